"""Schemathesis over the event endpoint, from the endpoint's own OpenAPI schema
(fetched behind a token, as a sender would): valid and invalid requests for
every operation it describes. Every answer is a 4xx naming the field, or an
acceptance; never a 5xx; and a request that stored nothing left every table
exactly as it was."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.integration.endpoint import NAMES_A_FIELD, TOKENS, changed_anything, reasons, serving, write_senders
from tests.integration.helpers import kept_only_the_refused_attempt, snapshot

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKENS['everything']}"}


@pytest.fixture
def endpoint(core, tmp_path):
    with serving(core, write_senders(tmp_path / "senders.toml")) as base:
        yield base


def operations(base: str):
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers=AUTH, timeout=10)
    # A batch of more than 1000 events violates the schema and is refused as too large.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    found = [result.ok() for result in schema.get_all_operations()]
    return {f"{op.method.upper()} {op.path}": op for op in found}


def test_the_schema_describes_every_operation(endpoint):
    assert set(operations(endpoint)) == {"POST /events", "GET /health"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", ["POST /events", "GET /health"])
def test_every_request_is_accepted_or_refused_with_a_reason_and_nothing_changes_when_refused(endpoint, core, label, mode):
    operation = operations(endpoint)[label]
    seen = {"accepted": 0, "refused": 0}

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None,
              max_examples=settings.default.max_examples if label == "POST /events" else 10)
    @given(case=operation.as_strategy(generation_mode=mode))
    def request(case):
        before = snapshot(core.engine)
        response = case.call(base_url=endpoint, headers=AUTH, timeout=30)
        # A schema-valid event may still be refused by the domain (a badge not
        # on the roster, a time in the future): valid data need not be accepted.
        case.validate_response(response, excluded_checks=[positive_data_acceptance], headers=AUTH)
        assert response.status_code < 500, response.text
        payload = response.json()
        for reason in reasons(payload):
            assert NAMES_A_FIELD.match(reason), f"the reason does not name the field: {reason!r}"
        # A service refused on its merits is a 422 that keeps the attempt in its
        # case's record (docs/interface.md); every other refusal changes nothing.
        after = snapshot(core.engine)
        if not changed_anything(payload):
            assert after == before, f"{response.status_code} {payload} changed the database"
        elif response.status_code >= 400:
            assert kept_only_the_refused_attempt(before, after), f"{response.status_code} {payload} changed more than its record"
        seen["refused" if response.status_code >= 400 else "accepted"] += 1

    request()
    if label == "POST /events":
        # The generator reached both sides of the validation (else it tested little).
        assert seen["refused"] > 0, seen
        # Positive events are generated from the schema the endpoint serves, whose
        # patterns are intake's own rules (models/event_schema.py): some must pass.
        assert mode is GenerationMode.NEGATIVE or seen["accepted"] > 0, seen
