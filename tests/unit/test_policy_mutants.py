"""A policy refused names the setting that is wrong, whichever check refuses it,
and says what is wrong in the words of the check, not of the validating library
(bench/results/mutation.md lists what these tests were written for)."""
import copy
from datetime import timedelta

import pytest

from models.policy import PolicyError, load_policy, policy_from_mapping
from tests.builders import BASE_POLICY, policy


def refused(**override) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        policy(**override)
    return caught.value


def test_a_policy_built_from_a_mapping_says_so_as_its_source():
    assert policy_from_mapping(copy.deepcopy(BASE_POLICY)).source == "<mapping>"
    assert policy_from_mapping(copy.deepcopy(BASE_POLICY), source="county.toml").source == "county.toml"


@pytest.mark.parametrize("data", [[], "wso", None])
def test_what_is_not_a_table_of_settings_is_refused_as_the_policy(data):
    with pytest.raises(PolicyError) as caught:
        policy_from_mapping(data)
    assert caught.value.field == "policy"


def test_a_validators_reason_is_given_without_the_librarys_preamble():
    said = refused(timezone="Mars/Olympus")
    assert said.field == "jurisdiction.timezone"
    assert str(said).startswith("policy: jurisdiction.timezone: unknown timezone 'Mars/Olympus'")
    said = refused(facilities=["RCJ", "RCJ"])
    assert str(said) == "policy: jurisdiction.facilities: facility codes must be unique"


def test_an_unknown_setting_is_called_one():
    data = copy.deepcopy(BASE_POLICY)
    data["hold"]["limt"] = "72h"
    with pytest.raises(PolicyError) as caught:
        policy_from_mapping(data)
    assert str(caught.value) == "policy: hold.limt: unknown setting (check the spelling)"


@pytest.mark.parametrize("override, field", [
    ({"page_supervisors_before": "48h"}, "hold.page_supervisors_before"),
    ({"page_supervisors_before": "soon"}, "hold.page_supervisors_before"),
    ({"pickup_poll_interval": "soon"}, "hold.pickup_poll_interval"),
])
def test_each_duration_is_refused_under_its_own_name(override, field):
    assert refused(**override).field == field


def test_a_zero_grace_is_allowed():
    assert policy(service_grace="0s").service_grace == timedelta(0)


def test_a_file_that_cannot_be_read_or_parsed_is_refused_as_the_file(tmp_path):
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "missing.toml")
    assert caught.value.field == "file"
    broken = tmp_path / "broken.toml"
    broken.write_text("[hold\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(broken)
    assert caught.value.field == "file"


def test_a_policy_file_is_read_as_utf8(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[jurisdiction]\nname = "Condado de Peñuelas"\nmode = "wso"\ntimezone = "America/Puerto_Rico"\n'
                    'facilities = ["CPJ"]\n\n[hold]\nlimit = "48h"\n', encoding="utf-8")
    loaded = load_policy(path)
    assert loaded.name == "Condado de Peñuelas" and loaded.source == str(path)
