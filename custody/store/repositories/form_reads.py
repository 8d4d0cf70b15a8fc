"""How far the readers of officers' forms (submitted in the Prefect UI) have read."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.rules import NEVER_READ


class FormReadRepository(Repository):
    def read_through(self, case_ids: list[str]) -> dict[str, datetime]:
        """For those of the cases that have a run (and so a form an officer may
        have submitted): the instant through which the forms have been read;
        the start of time for all if no reader has ever finished a pass."""
        r = t.case_runs
        with_runs = list(self.conn.execute(select(r.c.case_id).where(r.c.case_id.in_(case_ids), r.c.flow_run_id.is_not(None)))
                         .scalars())
        if not with_runs:
            return {}
        through = self.conn.execute(select(func.max(t.report_reads.c.read_through))).scalar_one_or_none()
        return dict.fromkeys(with_runs, through or NEVER_READ)

    def record(self, source: str, through: datetime, now: datetime, error: str | None = None) -> None:
        """A reader has read every report stored by `through` (never moves back);
        `error`: why its latest pass failed (None: it did not)."""
        rr = t.report_reads
        self._insert_ignore(rr, dict(source=source, read_through=through, updated_at=now, last_error=error))
        self.conn.execute(update(rr).where(rr.c.source == source, rr.c.read_through < through)
                          .values(read_through=through))
        self.conn.execute(update(rr).where(rr.c.source == source).values(updated_at=now, last_error=error))
