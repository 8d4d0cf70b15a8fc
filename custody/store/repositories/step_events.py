"""Which steps of each case the operations console (Prefect's event feed) has
been told of: one mark per audit chain, the last entry published.

A chain's entries are numbered without gaps and appended one writer at a time
(custody/store/repositories/audit.py), so "every entry after the mark" misses
nothing, however transactions interleave; a cursor over the trail's ids would
skip an entry committed after a later id was read."""
from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.audit_chain import SYSTEM_CHAIN


class StepEventRepository(Repository):
    def untold(self, limit: int) -> list[RowMapping]:
        """The oldest case steps not yet published, with each case's run. A case
        whose run does not exist yet waits for it (every case gets one, even one
        that opens ended), so each event names the run it belongs to."""
        a, h, m, r = t.audit, t.audit_heads, t.step_event_marks, t.case_runs
        done = func.coalesce(m.c.seq, 0)
        behind = (select(h.c.chain, done.label("done")).select_from(h.outerjoin(m, m.c.chain == h.c.chain))
                  .where(h.c.seq > done, h.c.chain != SYSTEM_CHAIN).subquery())
        return list(self.conn.execute(
            select(a, r.c.flow_run_id).join(behind, and_(a.c.chain == behind.c.chain, a.c.seq > behind.c.done))
            .join(r, r.c.case_id == a.c.case_id).where(r.c.flow_run_id.is_not(None))
            .order_by(a.c.id).limit(limit)).mappings())

    def told(self, marks: dict[str, int]) -> None:
        """Move each chain's mark forward (never back: two publishers may race)."""
        if not marks:
            return
        m = t.step_event_marks
        upsert = sqlite_insert(m) if self.conn.dialect.name == "sqlite" else pg_insert(m)
        upsert = upsert.on_conflict_do_update(index_elements=[m.c.chain], where=m.c.seq < upsert.excluded.seq,
                                              set_={"seq": upsert.excluded.seq})
        self.conn.execute(upsert, [dict(chain=chain, seq=seq) for chain, seq in marks.items()])
