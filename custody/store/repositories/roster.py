"""The roster of certified officers, with its history (lines are closed, never deleted)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.domain import RosterEntry


class RosterRepository(Repository):
    def history(self) -> list[RosterEntry]:
        return [_roster_entry(r) for r in self.conn.execute(select(t.roster).order_by(t.roster.c.id)).mappings()]

    def entries(self, badge: str) -> list[RosterEntry]:
        rows = self.conn.execute(select(t.roster).where(t.roster.c.badge == badge).order_by(t.roster.c.id)).mappings()
        return [_roster_entry(r) for r in rows]

    def current(self) -> list[RosterEntry]:
        rows = self.conn.execute(select(t.roster).where(t.roster.c.valid_to.is_(None)).order_by(t.roster.c.badge)).mappings()
        return [_roster_entry(r) for r in rows]

    def replace(self, entries: Iterable[RosterEntry], *, now: datetime, actor: str, source: str, file_sha256: str) -> dict[str, list[str]]:
        """Replace the roster as a whole. Unchanged lines keep their row (and so
        their history); changed or removed lines are closed, never deleted."""
        entries = list(entries)
        load_id = self.conn.execute(insert(t.roster_loads).values(
            loaded_at=now, actor=actor, source=source, file_sha256=file_sha256, officers=len(entries))).inserted_primary_key[0]
        current = {e.badge: e for e in self.current()}
        incoming = {e.badge: e for e in entries}
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "unchanged": []}
        for badge, old in current.items():
            new = incoming.get(badge)
            if new is not None and _same_line(old, new):
                changes["unchanged"].append(badge)
                continue
            self.conn.execute(update(t.roster).where(t.roster.c.badge == badge, t.roster.c.valid_to.is_(None))
                              .values(valid_to=now, ended_by_load_id=load_id))
            changes["removed" if new is None else "changed"].append(badge)
        for badge, new in incoming.items():
            if badge in current and badge in changes["unchanged"]:
                continue
            if badge not in current:
                changes["added"].append(badge)
            self.conn.execute(insert(t.roster).values(
                badge=badge, name=new.name, certified_on=new.certified_on, expires_on=new.expires_on,
                facility=new.facility, valid_from=now, load_id=load_id))
        return changes


def _same_line(a: RosterEntry, b: RosterEntry) -> bool:
    return (a.name, a.certified_on, a.expires_on, a.facility) == (b.name, b.certified_on, b.expires_on, b.facility)


def _roster_entry(r: RowMapping) -> RosterEntry:
    return RosterEntry(badge=r["badge"], name=r["name"], certified_on=r["certified_on"], expires_on=r["expires_on"],
                       facility=r["facility"], valid_from=r["valid_from"], valid_to=r["valid_to"])
