"""The endpoint's status comes from the kind of refusal, never from its wording."""
from custody.http import REFUSAL_STATUS, _status_for
from custody.service.intake import IngestResult
from models.events import Refusal


def test_every_kind_of_refusal_has_its_status():
    assert REFUSAL_STATUS == {Refusal.INVALID: 422, Refusal.NOT_PERMITTED: 403, Refusal.CONFLICT: 409}


def test_the_status_follows_the_code_whatever_the_reason_says():
    assert _status_for(IngestResult("e1", "rejected", "type: sender 'jms' may not send it")) == 422
    assert _status_for(IngestResult("e1", "rejected", "anything at all", refusal=Refusal.NOT_PERMITTED)) == 403
    assert _status_for(IngestResult("e1", "rejected", "anything at all", refusal=Refusal.CONFLICT)) == 409
    assert _status_for(IngestResult("e1", "accepted")) == 201 and _status_for(IngestResult("e1", "duplicate")) == 200


def test_the_kind_of_refusal_is_not_part_of_the_published_result():
    assert IngestResult("e1", "rejected", "x: y", refusal=Refusal.CONFLICT).as_dict() == {
        "event_id": "e1", "result": "rejected", "reason": "x: y"}
