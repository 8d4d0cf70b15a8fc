"""The Prefect run that mirrors each case: which run, and which version of the case it has seen."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.domain import Status


class RunRepository(Repository):
    def get(self, case_id: str) -> RowMapping | None:
        return self.conn.execute(select(t.case_runs).where(t.case_runs.c.case_id == case_id)).mappings().first()

    def record(self, case_id: str, flow_run_id: str | None, now: datetime, error: str | None = None) -> None:
        self._insert_ignore(t.case_runs, dict(case_id=case_id, flow_run_id=None, created_at=now, synced_version=0))
        values: dict[str, Any] = {"last_error": error}
        if flow_run_id is not None:
            values["flow_run_id"] = flow_run_id
        self.conn.execute(update(t.case_runs).where(t.case_runs.c.case_id == case_id).values(**values))
        self.caught_up(case_id)

    def synced(self, case_id: str, version: int, digest: str | None = None) -> None:
        """The run has seen `version` (never moves back). With the digest of what
        it mirrored at that version; at the same version a digest fills in."""
        r = t.case_runs
        values: dict[str, Any] = {"synced_version": version}
        if digest is not None:
            values["mirror_digest"] = digest
            newer = or_(r.c.synced_version < version, and_(r.c.synced_version == version, r.c.mirror_digest.is_distinct_from(digest)))
        else:
            newer = r.c.synced_version < version
        self.conn.execute(update(r).where(r.c.case_id == case_id, newer).values(**values))
        self.caught_up(case_id)

    def synced_unchanged(self, case_id: str, version: int, seen_version: int, digest: str) -> bool:
        """Compare-and-set: mark `version` seen only if the row still says what
        the caller read (`seen_version`, `digest`); False if the run wrote since."""
        r = t.case_runs
        done = self.conn.execute(update(r).where(r.c.case_id == case_id, r.c.synced_version == seen_version,
                                                 r.c.mirror_digest == digest, r.c.synced_version < version)
                                 .values(synced_version=version).execution_options(preserve_rowcount=True))
        if done.rowcount != 1:
            return False
        self.caught_up(case_id)
        return True

    def caught_up(self, *case_ids: str) -> None:
        """Clear each case's mirror_pending if its run exists and has seen its
        latest version; a change committed meanwhile keeps it set (the version
        compared is the one this statement finds)."""
        c, r = t.cases, t.case_runs
        seen = select(r.c.case_id).where(r.c.case_id == c.c.case_id, r.c.flow_run_id.is_not(None),
                                         r.c.synced_version >= c.c.version).exists()
        self.conn.execute(update(c).where(c.c.case_id.in_(case_ids), c.c.mirror_pending.is_(True), seen).values(mirror_pending=False))

    def out_of_sync(self, limit: int = 500) -> list[RowMapping]:
        """Cases whose run is missing or has not seen the latest version."""
        c, r = t.cases, t.case_runs
        return list(self.conn.execute(
            select(c.c.case_id, c.c.facility, c.c.version, c.c.status, r.c.flow_run_id, r.c.synced_version)
            .select_from(c.outerjoin(r, r.c.case_id == c.c.case_id))
            .where(c.c.mirror_pending.is_(True),  # through its partial index: the waiting cases in step are not read
                   or_(r.c.case_id.is_(None), r.c.flow_run_id.is_(None), r.c.synced_version < c.c.version))
            .order_by(c.c.next_due_at, c.c.case_id).limit(limit)
        ).mappings())

    def awaiting_service(self) -> list[RowMapping]:
        """The cases whose run may be asking an officer for the service (status
        release_authorized, a run known), with when their window opened."""
        c, r = t.cases, t.case_runs
        return list(self.conn.execute(
            select(c.c.case_id, r.c.flow_run_id, c.c.release_authorized_at)
            .select_from(c.join(r, r.c.case_id == c.c.case_id))
            .where(c.c.status == Status.RELEASE_AUTHORIZED.value, r.c.flow_run_id.is_not(None))).mappings())
