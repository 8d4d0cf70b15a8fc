"""The policy's limits at their edges, and what each refusal says: a county
that mistypes its policy reads which setting is wrong and why."""
from datetime import timedelta

import pytest

from custody.config import DEFAULT_POLICY
from models.policy import PolicyError, load_policy
from tests.builders import policy

H = timedelta(hours=1)


def refusal(**override):
    with pytest.raises(PolicyError) as caught:
        policy(**override)
    said = str(caught.value)
    assert said.startswith("policy: ")
    return said.removeprefix("policy: ")


def test_every_setting_of_the_shipped_file_is_read():
    shipped = load_policy(DEFAULT_POLICY)
    assert shipped.name == "Rockingham County Sheriff's Office (example)"
    assert shipped.facilities == ("RCJ",) and shipped.single_facility == "RCJ"
    assert shipped.ice_advance_notice == 48 * H and shipped.pickup_poll_interval == timedelta(minutes=15)
    assert shipped.report_wait == timedelta(seconds=30) and shipped.source == str(DEFAULT_POLICY)
    assert [a.effective_from.isoformat() for a in shipped.anchors] == ["2024-12-01", "2025-10-01"]


def test_the_refusals_say_what_is_wrong():
    assert refusal(limit="0s") == "hold.limit: must be longer than zero"
    assert refusal(limit="49h") == "hold.limit: 49h is above the legal maximum of 48h; it may only be set lower"
    assert refusal(reminder_marks=["0s"]) == "hold.reminder_marks: must be longer than zero"
    assert refusal(reminder_marks=["48h"]) == "hold.reminder_marks: 48h must be shorter than the hold limit (48h)"
    assert refusal(reminder_marks=["1h", "60m"]) == "hold.reminder_marks: marks must be distinct"
    assert refusal(page_supervisors_before="3h") == "hold.page_supervisors_before: must not be longer than hold.release_order_lead"
    assert refusal(pickup_poll_interval="0s") == "hold.pickup_poll_interval: must be longer than zero"
    assert refusal(ice_advance_notice="soon") == "hold.ice_advance_notice: " + refusal(limit="soon").removeprefix("hold.limit: ")
    assert refusal(service_grace="-1h") == "hold.service_grace: '-1h' is not a duration (write e.g. '48h', '90m', '1h30m')"
    assert refusal(mode="wso", service_grace="44h", release_order_lead="2h", report_wait="2h1s") == (
        "hold.report_wait: hold.service_grace plus hold.report_wait must not be longer than hold.limit minus hold.release_order_lead")
    assert refusal(anchor=[{"effective_from": "2025-10-01", "rule": "release_authorized"},
                           {"effective_from": "2025-10-01", "rule": "detainer_received"}]) == (
        "anchor: effective_from dates must be distinct and in ascending order")


def test_a_duration_that_is_not_text_is_refused_naming_the_setting():
    assert refusal(limit=48) == "hold.limit: Input should be a valid string"


def test_the_edges_that_are_allowed():
    assert policy(release_order_lead="0s", page_supervisors_before="0s").release_order_lead == timedelta(0)
    assert policy(page_supervisors_before="2h").page_supervisors_before == 2 * H  # equal to the lead
    assert policy(reminder_marks=["47h59m59s"]).reminder_marks == (48 * H - timedelta(seconds=1),)
    # a wso window decided exactly at the release-order time of the hold it would start
    assert policy(mode="wso", service_grace="44h", release_order_lead="2h", report_wait="2h").report_wait == 2 * H
    assert policy(mode="detainer", service_grace="44h", release_order_lead="2h", report_wait="2h1s").report_wait == 2 * H + timedelta(seconds=1)
    assert policy(limit="48h").hold_limit == 48 * H


def test_reminder_marks_are_kept_soonest_last():
    assert policy(reminder_marks=["1h", "12h", "4h"]).reminder_marks == (12 * H, 4 * H, H)
