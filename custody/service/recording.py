"""A decided case written down: its row, its audit entries and its outbox rows,
in the caller's transaction; and what is due at an instant, fired."""
from __future__ import annotations

from datetime import datetime

from custody.store.repositories.audit import AuditEntry
from custody.store.unit_of_work import SqlUnitOfWork
from models.case import Case
from models.domain import Notice, Status, Transition
from models.notices import address
from models.policy import Policy
from models.rules import service_due_by


def advance(uow: SqlUnitOfWork, policy: Policy, case: Case, now: datetime) -> None:
    """Fire what is due at `now`, knowing how far the officers' reports have been read."""
    case.advance(now, policy, reports_read_through(uow, [case], now, policy).get(case.case_id))


def reports_read_through(uow: SqlUnitOfWork, cases: list[Case], now: datetime, policy: Policy) -> dict[str, datetime]:
    """For each case whose service window has closed by `now` and whose officer
    can report through its run's form in the Prefect UI: the instant through
    which those reports have been read into the database (docs/rules.md, rule 6).
    A case with no run has no form, so no report of it can wait outside."""
    closed = [case.case_id for case in cases if case.status is Status.RELEASE_AUTHORIZED
              and case.release_authorized_at is not None and now >= service_due_by(case.release_authorized_at, policy)]
    return uow.form_reads.read_through(closed) if closed else {}


def persist(uow: SqlUnitOfWork, policy: Policy, case: Case, now: datetime, actor: str,
             source_event_id: str | None, detainer_id: int | None = None) -> str:
    effects = case.drain_effects()
    uow.cases.save(case, policy, now, detainer_id)
    record_effects(uow, policy, [(case, effects, now)], actor, source_event_id)
    said = [effect.action if effect.status_before == effect.status_after
            else f"{effect.action} ({effect.status_before or 'new'} -> {effect.status_after})"
            for effect in effects if isinstance(effect, Transition)]
    return "; ".join(said) or "recorded"


def record_effects(uow: SqlUnitOfWork, policy: Policy, changed: list[tuple[Case, list[Transition | Notice], datetime]],
                    actor: str, source_event_id: str | None) -> None:
    """The audit entries and outbox rows of saved cases (each with the instant
    it was decided at), in order, each kind in one call."""
    uow.audit.add_many([AuditEntry(case.case_id, now, actor, source_event_id, effect)
                        for case, effects, now in changed for effect in effects if isinstance(effect, Transition)])
    uow.outbox.add_many([message for case, effects, now in changed for effect in effects if isinstance(effect, Notice)
                         for message in address(effect, case, policy, now)])
