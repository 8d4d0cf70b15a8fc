"""The audit trail: one hash chain per case, appended in the writing transaction,
with each chain's head kept beside it so a missing tail is evident."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import LOCK_AUDIT_CHAIN, Repository, advisory_locks
from models.audit_chain import GENESIS, chain_of, entry_hash, first_broken_link
from models.domain import Transition


class AuditRepository(Repository):
    def add(self, *, case_id: str | None, at: datetime, actor: str, source_event_id: str | None, transition: Transition) -> None:
        self.add_many([AuditEntry(case_id, at, actor, source_event_id, transition)])

    def add_many(self, entries: list[AuditEntry]) -> None:
        """Append to each case's hash chain, in order. UNIQUE(chain, seq) refuses
        a fork; to not need it, appenders of one chain take turns: on PostgreSQL a
        lock per chain until commit, taken in one order so two writers never wait
        on each other (the `system` chain has no case row to serialise its
        writers, and two of them would otherwise read the same head); on SQLite
        the one writer at a time."""
        if not entries:
            return
        a = t.audit
        chains = {chain_of(e.case_id) for e in entries}
        advisory_locks(self.conn, LOCK_AUDIT_CHAIN, chains)
        last = select(a.c.chain, func.max(a.c.seq)).where(a.c.chain.in_(chains)).group_by(a.c.chain)
        heads = {chain: (seq, digest) for chain, seq, digest in self.conn.execute(
            select(a.c.chain, a.c.seq, a.c.entry_hash).where(tuple_(a.c.chain, a.c.seq).in_(last)))}
        rows = []
        for e in entries:
            chain = chain_of(e.case_id)
            seq, prev = heads.get(chain, (0, GENESIS))
            entry = dict(case_id=e.case_id, at=e.at, actor=e.actor, source_event_id=e.source_event_id,
                         action=e.transition.action,
                         status_before=e.transition.status_before and str(e.transition.status_before),
                         status_after=e.transition.status_after and str(e.transition.status_after),
                         reason=e.transition.reason, chain=chain, seq=seq + 1, prev_hash=prev)
            entry["entry_hash"] = entry_hash(prev, entry)
            heads[chain] = (seq + 1, entry["entry_hash"])
            rows.append(entry)
        self.conn.execute(insert(a), rows)
        self._move_heads({chain: heads[chain] for chain in chains})

    def _move_heads(self, heads: dict[str, tuple[int, str]]) -> None:
        """Each chain's head to its newest entry, in the appending transaction."""
        h = t.audit_heads
        upsert = sqlite_insert(h) if self.conn.dialect.name == "sqlite" else pg_insert(h)
        upsert = upsert.on_conflict_do_update(index_elements=[h.c.chain], where=h.c.seq < upsert.excluded.seq,
                                              set_={"seq": upsert.excluded.seq, "entry_hash": upsert.excluded.entry_hash})
        self.conn.execute(upsert, [dict(chain=chain, seq=seq, entry_hash=digest) for chain, (seq, digest) in heads.items()])

    def broken_links(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """The first broken link of every chain that has one (all chains, or one case's)."""
        a = t.audit
        query = select(a).order_by(a.c.chain, a.c.seq)
        if case_id is not None:
            query = query.where(a.c.chain == chain_of(case_id))
        h = t.audit_heads
        head_query = select(h.c.chain, h.c.seq, h.c.entry_hash)
        if case_id is not None:
            head_query = head_query.where(h.c.chain == chain_of(case_id))
        heads = {chain: (seq, digest) for chain, seq, digest in self.conn.execute(head_query)}
        broken, chain, entries = [], None, []
        for row in list(self.conn.execute(query).mappings()) + [None]:
            if row is None or row["chain"] != chain:
                if entries:
                    found = first_broken_link(entries, heads.pop(chain, None))
                    if found:
                        broken.append(found)
                chain, entries = (row["chain"] if row else None), []
            if row is not None:
                entries.append(row)
        for chain, head in heads.items():  # a chain whose every entry is gone
            broken.append(first_broken_link([], head, chain))
        return broken

    def count(self) -> int:
        return self.conn.execute(select(func.count()).select_from(t.audit)).scalar_one()

    def for_case(self, case_id: str) -> list[RowMapping]:
        return self.for_cases([case_id]).get(case_id, [])

    def for_cases(self, case_ids: list[str]) -> dict[str, list[RowMapping]]:
        return self._rows_by_case(t.audit, case_ids, t.audit.c.id)


@dataclass(frozen=True)
class AuditEntry:
    case_id: str | None
    at: datetime
    actor: str
    source_event_id: str | None
    transition: Transition
