from datetime import date, timedelta

import pytest

from custody.config import DEFAULT_POLICY
from models.policy import AnchorKind, Mode, PolicyError, load_policy
from tests.builders import policy, utc


def test_shipped_policy_is_rockingham_like_wso_48h_new_york():
    shipped = load_policy(DEFAULT_POLICY)
    assert shipped.mode is Mode.WSO
    assert shipped.hold_limit == timedelta(hours=48)
    assert shipped.timezone.key == "America/New_York"
    assert shipped.reminder_marks == (timedelta(hours=12), timedelta(hours=4), timedelta(hours=1))
    assert shipped.release_order_lead == timedelta(hours=2)
    assert shipped.service_grace == timedelta(hours=1)
    assert shipped.page_supervisors_before == timedelta(minutes=30)


def test_shipped_anchor_rules_follow_the_nc_statutes_by_effective_date():
    shipped = load_policy(DEFAULT_POLICY)
    assert shipped.anchor_kind_at(utc(2024, 11, 30, 12)) is AnchorKind.RELEASE_AUTHORIZED
    assert shipped.anchor_kind_at(utc(2025, 3, 1, 12)) is AnchorKind.DETAINER_RECEIVED  # HB 10
    assert shipped.anchor_kind_at(utc(2025, 10, 1, 12)) is AnchorKind.RELEASE_AUTHORIZED  # HB 318


def test_effective_date_is_a_local_date():
    pol = policy(anchor=[{"effective_from": "2025-10-01", "rule": "detainer_received"}])
    # 2025-10-01 03:30Z is still 2025-09-30 in New York: the rule is not yet in force.
    assert pol.anchor_kind_at(utc(2025, 10, 1, 3, 30)) is AnchorKind.RELEASE_AUTHORIZED
    assert pol.anchor_kind_at(utc(2025, 10, 1, 4, 30)) is AnchorKind.DETAINER_RECEIVED


@pytest.mark.parametrize("limit", ["49h", "48h1s", "3d"])
def test_a_limit_above_48_hours_is_refused_naming_the_field(limit):
    with pytest.raises(PolicyError) as caught:
        policy(limit=limit)
    assert caught.value.field == "hold.limit"
    assert "48h" in str(caught.value)


def test_a_lower_limit_is_allowed():
    assert policy(limit="24h").hold_limit == timedelta(hours=24)
    assert policy(limit="3m", reminder_marks=["1m"], release_order_lead="1m", page_supervisors_before="30s",
                  service_grace="30s").hold_limit == timedelta(minutes=3)


@pytest.mark.parametrize("override, field", [
    ({"mode": "hold_forever"}, "jurisdiction.mode"),
    ({"timezone": "Mars/Olympus"}, "jurisdiction.timezone"),
    ({"facilities": []}, "jurisdiction.facilities"),
    ({"limit": "soon"}, "hold.limit"),
    ({"limit": "0s"}, "hold.limit"),
    ({"reminder_marks": ["48h"]}, "hold.reminder_marks"),
    ({"release_order_lead": "49h"}, "hold.release_order_lead"),
    ({"page_supervisors_before": "3h"}, "hold.page_supervisors_before"),
    ({"service_grace": "-1h"}, "hold.service_grace"),
    ({"report_wait": "later"}, "hold.report_wait"),
    ({"report_wait": "48h"}, "hold.report_wait"),
    ({"mode": "wso", "service_grace": "44h", "release_order_lead": "2h", "report_wait": "2h1s"}, "hold.report_wait"),
    ({"anchor": [{"effective_from": "2025-10-01", "rule": "release_authorized"},
                 {"effective_from": "2024-12-01", "rule": "detainer_received"}]}, "anchor"),
    ({"anchor": [{"effective_from": "2025-10-01", "rule": "whenever"}]}, "anchor.0.rule"),
])
def test_invalid_policies_are_refused_naming_the_field(override, field):
    with pytest.raises(PolicyError) as caught:
        policy(**override)
    assert caught.value.field == field, str(caught.value)


def test_unknown_settings_are_refused(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text().replace('limit = "48h"', 'limit = "48h"\nlimt = "72h"'))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.field == "hold.limt"


def test_unreadable_or_broken_files_are_refused(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[hold\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(broken)


def test_anchor_effective_dates_parse_as_dates():
    pol = policy(anchor=[{"effective_from": "2025-10-01", "rule": "release_authorized"}])
    assert pol.anchors[0].effective_from == date(2025, 10, 1)


def test_the_wait_for_unread_officers_reports_defaults_to_30_seconds_and_may_be_zero():
    assert policy().report_wait == timedelta(seconds=30)
    assert policy(report_wait="0s").report_wait == timedelta(0)
