"""Events through the real handlers into a real database (SQLite or PostgreSQL)."""
from datetime import timedelta

import pytest

from custody.service.backstop import sweep
from custody.service.core import Sender
from custody.service.intake import ingest, ingest_many
from custody.service.views import find_case
from custody.store import schema as t
from models.domain import Status
from tests.builders import (
    copy_event,
    detainer_event,
    lift_event,
    release_event,
    released_event,
    scheduled_event,
    service_event,
    transfer_event,
    utc,
)
from tests.databases import database_url
from tests.integration.helpers import kept_only_the_refused_attempt, rows, snapshot

OPERATOR = Sender("cli:test")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def send(core, *events, sender=OPERATOR):
    results = [ingest(core, e, sender) for e in events]
    return results[0] if len(results) == 1 else results


def case_of(core, booking="B1"):
    with core.uow() as uow:
        return find_case(uow, booking)


def test_one_case_from_detainer_to_pickup(core, clock):
    t0 = clock.now() - 30 * M
    send(core, detainer_event("d1", "B1", t0 - 20 * H), copy_event("c1", "B1", t0 - 19 * H))
    assert case_of(core).status is Status.AWAITING_RELEASE
    r = send(core, release_event("r1", "B1", t0))
    assert r.result == "accepted" and case_of(core).status is Status.RELEASE_AUTHORIZED
    send(core, service_event("s1", "B1", t0 + 10 * M))
    case = case_of(core)
    assert case.status is Status.HELD and case.deadline_at == t0 + 48 * H
    clock.set(t0 + 5 * H)
    assert send(core, transfer_event("x1", "B1", t0 + 5 * H)).result == "accepted"
    assert case_of(core).status is Status.TRANSFERRED
    outbox = rows(core.engine, t.outbox)
    keys = {r["idempotency_key"] for r in outbox}
    assert {f"{case.case_id}:release-notice:ice", f"{case.case_id}:serve-warrant:wso",
            f"{case.case_id}:hold-started:ice", f"{case.case_id}:picked-up:release-desk"} <= keys
    audit = rows(core.engine, t.audit, t.audit.c.case_id == case.case_id)
    assert [a["status_after"] for a in audit if a["status_before"] != a["status_after"]] == \
        ["awaiting_release", "release_authorized", "held", "transferred"]
    assert all(a["source_event_id"] for a in audit)


def test_same_event_twice_is_a_duplicate_and_changes_nothing(core):
    event = detainer_event("d1", "B1", utc(2026, 3, 11, 9))
    assert send(core, event).result == "accepted"
    before = snapshot(core.engine)
    again = send(core, dict(event))
    assert again.result == "duplicate" and again.case_id == "2026-00001"
    assert snapshot(core.engine) == before


def test_same_id_with_another_body_is_rejected_and_changes_nothing(core):
    send(core, detainer_event("d1", "B1", utc(2026, 3, 11, 9)))
    before = snapshot(core.engine)
    other = send(core, detainer_event("d1", "B2", utc(2026, 3, 11, 9)))
    assert other.result == "rejected" and other.reason.startswith("event_id:")
    assert snapshot(core.engine) == before


@pytest.mark.parametrize("event, field", [
    ({**service_event("s9", "B1", utc(2026, 3, 11, 11)), "location": "not a code"}, "location"),
    ({**release_event("r9", "B1", utc(2026, 3, 11, 11)), "facility": "ELSEWHERE"}, "facility"),
    ({**release_event("r9", "B1", utc(2026, 3, 11, 11)), "occurred_at": "2026-03-11T11:00:00"}, "occurred_at"),
    (release_event("r9", "B1", utc(2026, 3, 11, 12, 6)), "occurred_at"),
])
def test_every_rejection_names_the_field_and_changes_nothing(core, clock, event, field):
    send(core, detainer_event("d1", "B1", utc(2026, 3, 10, 9)), release_event("r1", "B1", utc(2026, 3, 11, 10, 45)))
    before = snapshot(core.engine)
    result = send(core, event)
    assert result.result == "rejected" and result.reason.startswith(field + ":"), result.reason
    assert snapshot(core.engine) == before


@pytest.mark.parametrize("fields, field, reason", [
    (dict(badge="W-404"), "officer_badge", "badge 'W-404' is not on the WSO roster"),
    (dict(badge="W-2"), "officer_badge", "badge 'W-2' is not certified on 2026-03-11"),  # expired 2026-03-10
    (dict(warrant="W-00"), "warrant_number", "does not match the warrant on file"),
    (dict(location="PRISON"), "location", "'PRISON' is not one of this jail's facilities"),
])
def test_a_refused_service_counts_for_nothing_and_stays_on_the_record(core, clock, fields, field, reason):
    """A service refused on its merits is answered `rejected`, naming the field,
    and holds nobody; the attempt is kept: on the case's record (badge, time,
    reason), told to supervisors, and the same report again gets the same answer."""
    send(core, detainer_event("d1", "B1", utc(2026, 3, 10, 9)), release_event("r1", "B1", utc(2026, 3, 11, 11, 30)))
    event = service_event("s9", "B1", utc(2026, 3, 11, 11, 40), **fields)
    first = snapshot(core.engine)
    result = send(core, event)
    assert result.result == "rejected" and result.reason.startswith(f"{field}: {reason}"), result.reason
    case = case_of(core)
    assert case.status is Status.RELEASE_AUTHORIZED and case.served_at is None and not case.hold_authorized
    refused = rows(core.engine, t.audit, t.audit.c.case_id == case.case_id, t.audit.c.action == "service_refused")
    badge = fields.get("badge", "W-1")
    assert [(a["source_event_id"], a["actor"]) for a in refused] == [("s9", f"cli:test:{badge}")]
    assert refused[0]["reason"].startswith(f"report by badge {badge} of a service at 2026-03-11T11:40:00Z refused: {field}: ")
    assert [r["recipient_group"] for r in rows(core.engine, t.outbox, t.outbox.c.kind == "service-refused")] == ["supervisors"]
    assert kept_only_the_refused_attempt(first, snapshot(core.engine))
    before = snapshot(core.engine)
    again = send(core, dict(event))
    assert (again.result, again.reason) == ("rejected", result.reason)
    assert snapshot(core.engine) == before
    assert send(core, service_event("s10", "B1", utc(2026, 3, 11, 11, 41))).result == "accepted"
    assert not kept_only_the_refused_attempt(before, snapshot(core.engine))  # a service that holds is more than a record
    assert case_of(core).status is Status.HELD


def test_a_sender_may_send_only_its_own_event_types(core):
    jail = Sender("jms", frozenset({"release.authorized", "inmate.released"}))
    send(core, detainer_event("d1", "B1", utc(2026, 3, 10, 9)))
    before = snapshot(core.engine)
    result = send(core, lift_event("l1", "B1", utc(2026, 3, 11, 9)), sender=jail)
    assert result.result == "rejected" and result.reason == "type: sender 'jms' may not send 'detainer.lifted' events"
    assert snapshot(core.engine) == before
    assert send(core, release_event("r1", "B1", utc(2026, 3, 11, 11, 30)), sender=jail).result == "accepted"


def test_each_refusal_carries_its_kind(core, clock):
    from models.events import Refusal
    event = detainer_event("d1", "B1", clock.now())
    assert send(core, event, sender=Sender("jms", frozenset({"release.authorized"}))).refusal is Refusal.NOT_PERMITTED
    assert send(core, {**event, "occurred_at": "2026-03-01T12:00:00"}).refusal is Refusal.INVALID
    assert send(core, event).result == "accepted"
    assert send(core, {**event, "facility": "RCJ", "booking_number": "B2"}).refusal is Refusal.CONFLICT


def test_release_before_the_detainer_is_kept_and_applied_when_it_arrives(core, clock):
    t0 = clock.now() - 20 * M
    kept = send(core, release_event("r1", "B1", t0))
    assert kept.result == "accepted" and kept.case_id is None
    send(core, service_event("s1", "B1", t0 + 5 * M))  # also before the detainer
    result = send(core, detainer_event("d1", "B1", t0 - 2 * H))
    case = case_of(core)
    assert case.status is Status.HELD and case.t0 == t0 and case.served_by == "W-1"
    inbox = {r["event_id"]: r for r in rows(core.engine, t.inbox)}
    assert inbox["r1"]["case_id"] == inbox["s1"]["case_id"] == result.case_id


def test_facts_kept_for_a_detainer_apply_in_the_order_a_batch_applies_them(make_core, clock, tmp_path):
    """The service and the person's leaving at one instant: the service first, as
    in one batch, whether the detainer came with them or after them."""
    t0 = clock.now() - 20 * M
    facts = [release_event("r1", "B1", t0), service_event("s1", "B1", t0 + 5 * M), released_event("o1", "B1", t0 + 5 * M)]
    detainer = detainer_event("d1", "B1", t0 - 2 * H)
    kept = make_core()
    send(kept, *facts)
    send(kept, detainer)
    batched = make_core(url=database_url(tmp_path, "batched"))
    assert [r.result for r in ingest_many(batched, [detainer, *facts], OPERATOR)] == ["accepted"] * 4
    seen = [(c.status, c.hold_authorized, c.served_at, c.released_at) for c in (case_of(kept), case_of(batched))]
    assert seen[0] == seen[1] == (Status.RELEASED, True, t0 + 5 * M, t0 + 5 * M)


def test_a_detainer_and_a_release_of_one_instant_apply_alike_kept_or_batched(make_core, clock, tmp_path):
    at = clock.now() - 20 * M
    detainer, release = detainer_event("d1", "B1", at), released_event("o1", "B1", at)
    kept = make_core()
    send(kept, release)
    send(kept, detainer)
    batched = make_core(url=database_url(tmp_path, "batched"))
    assert [r.result for r in ingest_many(batched, [release, detainer], OPERATOR)] == ["accepted"] * 2
    assert case_of(kept).status == case_of(batched).status


def test_a_detainer_for_someone_already_released_opens_a_closed_case(core, clock):
    send(core, released_event("out1", "B1", clock.now() - 3 * H))
    result = send(core, detainer_event("d1", "B1", clock.now() - H))
    case = case_of(core)
    assert case.status is Status.CLOSED and not case.hold_authorized
    assert "already been released" in case.no_hold_reason
    assert f"{result.case_id}:already-released:ice" in {r["idempotency_key"] for r in rows(core.engine, t.outbox)}


def test_a_detainer_during_release_processing_still_gets_its_grace(core, clock):
    t0 = clock.now() - 20 * M
    send(core, release_event("r1", "B1", t0))
    send(core, detainer_event("d1", "B1", clock.now()))
    assert case_of(core).status is Status.RELEASE_AUTHORIZED
    send(core, service_event("s1", "B1", clock.now()))
    assert case_of(core).status is Status.HELD


def test_a_late_t0_past_the_grace_orders_release_at_once(core, clock):
    send(core, detainer_event("d1", "B1", clock.now() - 30 * H))
    send(core, release_event("r1", "B1", clock.now() - 2 * H))  # heard of it two hours late
    case = case_of(core)
    assert case.status is Status.RELEASE_ORDERED and not case.hold_authorized


def test_reissued_and_repeated_detainers_merge_into_one_case(core, clock):
    first = send(core, detainer_event("d1", "B1", clock.now() - 5 * H, warrant=None))
    repeat = send(core, detainer_event("d2", "B1", clock.now() - 4 * H, warrant=None))  # same A-number + event number
    reissued = send(core, detainer_event("d3", "B1", clock.now() - 3 * H, event_number="EV2"))
    assert first.case_id == repeat.case_id == reissued.case_id
    assert len(rows(core.engine, t.cases)) == 1
    assert len(rows(core.engine, t.detainers)) == 2
    # The re-issued detainer, with its warrant, now governs: the hold can be made.
    assert case_of(core).detainer.warrant_number == "W-77"
    send(core, release_event("r1", "B1", clock.now() - 10 * M), service_event("s1", "B1", clock.now() - 5 * M))
    assert case_of(core).status is Status.HELD


def test_one_active_case_per_person_across_bookings(core, clock):
    a = send(core, detainer_event("d1", "B1", clock.now() - 5 * H))
    b = send(core, detainer_event("d2", "B2", clock.now() - 4 * H, event_number="EV9"))
    assert a.case_id == b.case_id


def test_lift_and_late_ice_arrival(core, clock):
    send(core, detainer_event("d1", "B1", clock.now() - 5 * H))
    send(core, lift_event("l1", "B1", clock.now() - 4 * H))
    assert case_of(core).status is Status.CLOSED
    send(core, released_event("out1", "B1", clock.now() - 3 * H))
    ice = send(core, transfer_event("x1", "B1", clock.now() - 2 * H))
    assert ice.result == "accepted" and case_of(core).status is Status.CLOSED
    actions = [a["action"] for a in rows(core.engine, t.audit, t.audit.c.case_id == ice.case_id)]
    assert actions[-1] == "transfer_after_close"


def test_release_scheduled_sends_ice_advance_notice(core, clock):
    result = send(core, detainer_event("d1", "B1", clock.now() - 5 * H),
                  scheduled_event("rs1", "B1", clock.now() - H, clock.now() + 72 * H))[1]
    [row] = rows(core.engine, t.outbox, t.outbox.c.kind == "advance-notice")
    assert row["recipient_group"] == "ice" and row["case_id"] == result.case_id


def test_notifications_carry_no_more_personal_data_than_needed(core, clock):
    send(core, detainer_event("d1", "B1", clock.now() - 5 * H, name="Zebulon Quux", verified=False))
    bodies = {r["recipient_group"]: r["body"] for r in rows(core.engine, t.outbox)}
    assert "Zebulon Quux" not in bodies["supervisors"] and "Zebulon Quux" not in bodies["records"]
    assert "1990-01-02" not in "".join(bodies.values())


def test_sweep_orders_due_releases_once_and_is_harmless_to_repeat(core, clock):
    t0 = clock.now() - 10 * M
    send(core, detainer_event("d1", "B1", t0 - H), release_event("r1", "B1", t0), service_event("s1", "B1", t0 + M))
    clock.set(t0 + 46 * H - timedelta(seconds=1))
    assert [a.action for a in sweep(core).actions] == ["reminder"]  # the 4 h mark, not the 12 h one too
    clock.set(t0 + 46 * H)
    report = sweep(core)
    assert [a.action for a in report.actions] == ["release_ordered"]
    assert report.next_due_at == t0 + 47 * H
    assert sweep(core).actions == []
    assert len(rows(core.engine, t.outbox, t.outbox.c.kind == "release-order")) == 3
