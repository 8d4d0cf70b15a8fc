"""The digest of what a case run mirrors: it moves with what the run acts on
(status, mode, hold-step instants, the officer form's facts) and with nothing
else (copies, reminders, schedules noted after T0, acknowledgements)."""
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

from custody.adapters.prefect.mirror import hold_steps, mirror_digest, mirror_view
from tests.builders import open_case, policy
from tests.unit.test_case import RECEIVED, T0, held_case

M = timedelta(minutes=1)


def test_the_same_case_gives_the_same_digest_a_hex_sha256():
    pol = policy()
    a, b = open_case(RECEIVED, pol), open_case(RECEIVED, pol)
    assert mirror_digest(a, pol) == mirror_digest(b, pol)
    assert len(mirror_digest(a, pol)) == 64 and int(mirror_digest(a, pol), 16) >= 0


def test_the_digest_is_the_same_in_another_process():
    """The sync (in `custody up`) and the run (a flow-run process) must agree: no
    hash randomisation, no ordering of a dict or set leaks into it."""
    pol = policy()
    here = mirror_digest(held_case(pol)[0], pol)
    code = ("from tests.builders import policy; from tests.unit.test_case import held_case; "
            "from custody.adapters.prefect.mirror import mirror_digest; p = policy(); print(mirror_digest(held_case(p)[0], p))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.strip()
    assert there == here


def test_a_status_change_moves_the_digest():
    pol = policy()
    case = open_case(RECEIVED, pol)
    before = mirror_digest(case, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert mirror_view(case, pol)["status"] == "release_authorized"
    assert mirror_digest(case, pol) != before


def test_what_the_run_does_not_act_on_leaves_the_digest_alone():
    pol = policy()
    case, _ = held_case(pol)
    before = mirror_digest(case, pol)
    version = case.version
    case.record_copy_served(T0 + 30 * M, "Records clerk", "es")
    case.schedule_release(T0 + 2 * M, pol, now=T0 + 31 * M)  # noted only: the hold already runs
    case.advance(case.deadline_at - timedelta(hours=12), pol)  # the 12-hour reminder
    case.advance(case.deadline_at - timedelta(hours=4), pol)   # the 4-hour reminder
    assert case.drain_effects(), "the case really moved (reminders, notes)"
    assert case.copy_served_at is not None and case.last_reminder_mark == timedelta(hours=4)
    assert mirror_digest(case, pol) == before, (version, case.version)


def test_the_release_order_is_a_status_change_and_moves_the_digest():
    pol = policy()
    case, _ = held_case(pol)
    before = mirror_digest(case, pol)
    case.advance(case.release_order_at, pol)
    assert str(case.status) == "release_ordered"
    assert mirror_digest(case, pol) != before


def test_the_officer_forms_facts_move_the_digest():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    base = mirror_digest(case, pol)
    for changed in (replace(case.detainer, warrant_number="W-78"), replace(case.detainer, warrant_form=None)):
        other = replace(case, detainer=changed)
        assert mirror_digest(other, pol) != base
    assert mirror_digest(replace(case, t0=T0 - M), pol) != base
    assert mirror_digest(replace(case, deadline_at=case.deadline_at - M), pol) != base
    assert mirror_digest(replace(case, booking_number="B2"), pol) != base


def test_the_mode_and_the_hold_step_instants_move_the_digest():
    pol = policy()
    case, _ = held_case(pol)
    base = mirror_digest(case, pol)
    assert mirror_digest(case, policy(mode="detainer")) != base
    steps = hold_steps(case, pol)
    assert [name for name, _ in steps] == ["reminder-12h", "reminder-4h", "reminder-1h", "release-order", "page-supervisors", "deadline"]
    earlier_order = replace(case, release_order_at=case.release_order_at - M)
    assert hold_steps(earlier_order, pol) != steps and mirror_digest(earlier_order, pol) != base
    other_marks = policy(reminder_marks=["6h", "1h"])
    assert hold_steps(case, other_marks) != steps and mirror_digest(case, other_marks) != base


def test_no_hold_steps_unless_a_hold_is_authorised_and_the_case_open():
    pol = policy()
    assert hold_steps(open_case(RECEIVED, pol), pol) == []
    case, _ = held_case(pol)
    assert hold_steps(case, pol)
    case.confirm_release(T0 + 40 * M, "desk", pol, now=T0 + 40 * M)
    assert hold_steps(case, pol) == []
    assert mirror_view(case, pol)["status"] == "released"
