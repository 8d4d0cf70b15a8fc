"""A notice addressed to its groups: one outbox row per group, each keyed so it
is never queued twice, written for that group's eyes, and carrying its urgency
and the instant it was decided; and a prompt dropped once its purpose passed,
saying why (bench/results/mutation.md lists what these tests were written for)."""
from dataclasses import replace
from datetime import timedelta

from models.domain import Notice, Service, Urgency
from models.notices import Addressed, address, purpose_passed, render
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


def test_a_prompt_still_pending_when_the_case_ended_is_dropped_naming_how_it_ended():
    case, pol = held_case()
    case.confirm_release(AT, "Desk 2", pol, now=AT)
    assert case.status_reason == "released by Desk 2"
    for kind in ("reminder", "serve-warrant", "identity-review"):
        assert purpose_passed(kind, "supervisors", case, AT) == "the case ended (released: released by Desk 2)"


def test_only_a_refused_service_says_why_it_was_refused():
    case, pol = held_case()
    refused = render(Notice("service-refused", ("supervisors",), Urgency.WARNING, mark="s2", detail="officer_badge: x"),
                     case, "supervisors", pol)
    assert "Refused because: officer_badge: x." in refused.body.splitlines()
    other = render(Notice("late-service", ("supervisors",), Urgency.WARNING, detail="officer_badge: x"), case, "supervisors", pol)
    assert "Refused because" not in other.body


def test_a_withdrawn_hold_of_a_case_with_no_release_due_says_the_time_is_not_set():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)  # no release authorised: no release due
    body = render(Notice("hold-withdrawn", ("supervisors",), Urgency.WARNING), case, "supervisors", pol).body
    [said] = [line for line in body.splitlines() if line.startswith("The hold had no authority")]
    assert said.endswith("; release was due not set.")


def test_a_request_to_serve_a_warrant_whose_number_is_not_on_file_reads_without_a_gap():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.detainer = replace(case.detainer, warrant_number=None)
    body = render(Notice("serve-warrant", ("wso",), Urgency.WARNING), case, "wso", pol).body
    assert body.splitlines()[-1] == ("What to do: serve the ICE warrant inside the jail by 2026-03-10 14:00 EDT "
                                     "(2026-03-10T18:00:00Z), then submit the form of the case's run (case-2026-00001, "
                                     "Resume) in the Prefect UI.")
