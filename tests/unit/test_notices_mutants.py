"""A notice addressed to its groups: one outbox row per group, each keyed so it
is never queued twice, written for that group's eyes, and carrying its urgency
and the instant it was decided (bench/results/mutation.md lists what these
tests were written for)."""
from datetime import timedelta

from models.domain import Notice, Service, Urgency
from models.notices import Addressed, address, render
from tests.builders import open_case, policy, utc

T0 = utc(2026, 3, 10, 17)
AT = T0 + timedelta(hours=1)


def held_case():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.record_service(Service("W-1", "W-77", "RCJ", T0 + timedelta(minutes=20), "s1"), [], pol, now=T0)
    case.drain_effects()
    return case, pol


def test_each_group_gets_its_own_row_keyed_for_the_case_and_the_group():
    case, pol = held_case()
    notice = Notice("reminder", ("ice", "records"), Urgency.WARNING, mark="1h")
    rows = address(notice, case, pol, AT)
    assert rows == [
        Addressed("2026-00001:reminder@1h:ice", "2026-00001", "reminder", "ice", "warning", render(notice, case, "ice", pol), AT),
        Addressed("2026-00001:reminder@1h:records", "2026-00001", "reminder", "records", "warning",
                  render(notice, case, "records", pol), AT),
    ]
    ice, records = (row.message.body for row in rows)
    assert "A123456789" in ice and "A123456789" not in records  # each row is written for its own group
    assert "Hold deadline: 2026-03-12 13:00 EDT" in ice  # in the jail's time, from the policy
