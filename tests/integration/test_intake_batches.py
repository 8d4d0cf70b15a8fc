"""A batch of events (a POST /events array) is decided event by event exactly
as if each had come alone, and made durable with one commit."""
import json
from pathlib import Path

from sqlalchemy import event

from models.handlers import Core, Sender, ingest, ingest_many
from tests.builders import detainer_event, release_event, service_event, transfer_event, utc
from tests.integration.helpers import snapshot

OPERATOR = Sender("cli:test")
REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"


def history():
    """The reference events, with a rejected one, a duplicate, a reused id and
    events that depend on earlier ones in the same batch."""
    t = utc(2026, 3, 11, 9)
    events = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line.strip()]
    events += [
        detainer_event("x-d1", "BX", t, a_number="A555000111"),
        {**release_event("x-bad", "BX", t), "reason": "no such reason"},  # rejected, names the field
        release_event("x-r1", "BX", t),
        release_event("x-r1", "BX", t),  # the same event again: a duplicate
        {**release_event("x-r1", "BX", t), "reason": "court_order"},  # its id reused for another event
        service_event("x-s1", "BX", t, badge="NOBODY"),  # refused by the rules: not on the roster
        transfer_event("x-t1", "BX", t),
    ]
    return events


def test_a_batch_decides_each_event_as_if_it_came_alone(make_core, tmp_path):
    alone = make_core(url=f"sqlite:///{tmp_path / 'alone.db'}")
    batched = make_core(url=f"sqlite:///{tmp_path / 'batched.db'}")
    events = history()

    one_by_one = [ingest(alone, e, OPERATOR) for e in events]
    together = ingest_many(batched, events, OPERATOR)

    assert [r.as_dict() for r in together] == [r.as_dict() for r in one_by_one]
    assert {r.result for r in together} == {"accepted", "duplicate", "rejected"}
    assert snapshot(batched.engine) == snapshot(alone.engine)


def test_a_batch_is_one_commit_and_tells_the_followers_after_it(make_core, tmp_path):
    base = make_core()
    told = []
    core = Core(base.engine, base.policy, base.clock, on_commit=lambda case_id, what: told.append((case_id, what)))
    commits = []
    event.listen(core.engine, "commit", lambda conn: commits.append(len(told)))
    t = utc(2026, 3, 11, 9)
    events = [e for n in range(20) for e in (detainer_event(f"d{n}", f"B{n}", t, a_number=f"A{n:09d}"),
                                              release_event(f"r{n}", f"B{n}", t))]

    results = ingest_many(core, events, OPERATOR)

    assert [r.result for r in results] == ["accepted"] * 40
    assert commits == [0]  # one commit, before anyone was told
    assert len(told) == 40 and told[:2] == [(results[0].case_id, "detainer.received"), (results[1].case_id, "release.authorized")]
