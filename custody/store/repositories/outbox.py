"""The outbox: every notification queued in the transaction that decided it, its
delivery attempts, and ICE's acknowledgements."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.notices import Addressed


class OutboxRepository(Repository):
    def add_many(self, messages: list[Addressed]) -> int:
        """One row per message, unless its idempotency key is already there;
        returns the rows added."""
        return self._insert_ignore(t.outbox, [dict(
            idempotency_key=m.key, case_id=m.case_id, kind=m.kind, recipient_group=m.group, urgency=m.urgency,
            subject=m.message.subject, body=m.message.body, state="pending", created_at=m.at, attempts=0,
            next_attempt_at=m.at) for m in messages])

    def add_alert(self, *, key: str, kind: str, groups: tuple[str, ...], urgency: str, subject: str, body: str,
                         now: datetime, case_id: str | None = None) -> int:
        """An alert that is not a step of a case (a failed run, an undelivered notice)."""
        return sum(self._insert_ignore(t.outbox, dict(
            idempotency_key=f"{key}:{group}", case_id=case_id, kind=kind, recipient_group=group, urgency=urgency,
            subject=subject, body=body, state="pending", created_at=now, attempts=0, next_attempt_at=now))
            for group in groups)

    def deliverable(self, now: datetime, limit: int) -> list[int]:
        o = t.outbox
        return list(self.conn.execute(
            select(o.c.id).where(o.c.state == "pending", o.c.next_attempt_at <= now,
                                 or_(o.c.claimed_until.is_(None), o.c.claimed_until < now))
            .order_by(o.c.next_attempt_at, o.c.id).limit(limit)).scalars())

    def claim(self, outbox_id: int, relay: str, now: datetime, until: datetime) -> bool:
        """Compare-and-set: only one relay holds a row at a time, so two healthy
        relays never send the same row twice."""
        o = t.outbox
        return self.conn.execute(update(o).where(
            o.c.id == outbox_id, o.c.state == "pending", or_(o.c.claimed_until.is_(None), o.c.claimed_until < now))
            .values(claimed_by=relay, claimed_until=until)).rowcount == 1

    def row(self, outbox_id: int) -> RowMapping:
        return self.conn.execute(select(t.outbox).where(t.outbox.c.id == outbox_id)).mappings().one()

    def delivered_channels(self, outbox_id: int) -> set[str]:
        a = t.delivery_attempts
        return set(self.conn.execute(select(a.c.channel).where(a.c.outbox_id == outbox_id, a.c.ok.is_(True))).scalars())

    def add_attempt(self, outbox_id: int, at: datetime, relay: str, channel: str, ok: bool, error: str | None) -> None:
        self.conn.execute(insert(t.delivery_attempts).values(outbox_id=outbox_id, at=at, relay=relay, channel=channel,
                                                             ok=ok, error=error))

    def settle(self, outbox_id: int, relay: str, **values: Any) -> bool:
        """Record the outcome, only if this relay still holds the claim."""
        o = t.outbox
        values.update(claimed_by=None, claimed_until=None)
        return self.conn.execute(update(o).where(o.c.id == outbox_id, o.c.claimed_by == relay, o.c.state == "pending")
                                 .values(**values)).rowcount == 1

    def recent(self, limit: int) -> list[RowMapping]:
        o = t.outbox
        return list(self.conn.execute(select(o).order_by(o.c.created_at.desc(), o.c.id.desc()).limit(limit)).mappings())

    def unacknowledged_ice(self, case_ids: list[str]) -> dict[str, list[str]]:
        """The kinds of notice ICE has not acknowledged, for each of the cases."""
        o = t.outbox
        found: dict[str, list[str]] = {}
        for chunk in self._chunks(case_ids):
            for case_id, kind in self.conn.execute(
                    select(o.c.case_id, o.c.kind).where(o.c.case_id.in_(chunk), o.c.recipient_group == "ice",
                                                        o.c.acknowledged_at.is_(None))
                    .order_by(o.c.id)):
                found.setdefault(case_id, []).append(kind)
        return found

    def for_case(self, case_id: str) -> list[RowMapping]:
        return list(self.conn.execute(select(t.outbox).where(t.outbox.c.case_id == case_id).order_by(t.outbox.c.id)).mappings())

    def attempts(self, outbox_id: int) -> list[RowMapping]:
        a = t.delivery_attempts
        return list(self.conn.execute(select(a).where(a.c.outbox_id == outbox_id).order_by(a.c.id)).mappings())

    def acknowledge(self, case_id: str, kind: str, at: datetime, by: str, queued_by: datetime) -> int:
        """ICE's acknowledgement, at `at`, of the notices of this kind queued by
        `queued_by`: a notice queued later cannot be what was acknowledged."""
        o = t.outbox
        return self.conn.execute(update(o).where(o.c.case_id == case_id, o.c.kind == kind, o.c.recipient_group == "ice",
                                                 o.c.acknowledged_at.is_(None), o.c.created_at <= queued_by)
                                 .values(acknowledged_at=at, acknowledged_by=by)).rowcount

    def first_unacknowledged_queued_at(self, case_id: str, kind: str) -> datetime | None:
        o = t.outbox
        return self.conn.execute(select(func.min(o.c.created_at)).where(
            o.c.case_id == case_id, o.c.kind == kind, o.c.recipient_group == "ice", o.c.acknowledged_at.is_(None))).scalar()

    def created_between(self, start: datetime, end: datetime) -> list[RowMapping]:
        o = t.outbox
        return list(self.conn.execute(select(o).where(o.c.created_at >= start, o.c.created_at < end)
                                      .order_by(o.c.id)).mappings())
