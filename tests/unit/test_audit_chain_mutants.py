"""The audit chain's hash is a fixed format: an entry hashed by this version
must verify under the next one and on a machine in any timezone, or `custody
audit verify` would call an untouched trail tampered with. So the payload is
written out here byte for byte (bench/results/mutation.md lists what these
tests were written for)."""
import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest

from models.audit_chain import GENESIS, entry_hash, first_broken_link

EST = timezone(timedelta(hours=-5))
ENTRY = {"id": 7, "chain": "2026-00001", "seq": 1, "case_id": "2026-00001",
         "at": datetime(2026, 3, 1, 7, 0, 0, 123456, tzinfo=EST), "actor": "José Ruiz", "source_event_id": None,
         "action": "case_opened", "status_before": None, "status_after": "awaiting_release",
         "reason": "detainer I-247A received from ERO Atlanta"}
# Keys sorted, no spaces, text as UTF-8 (not \u escapes), the instant in UTC to the microsecond, numbers and nulls as JSON's.
PAYLOAD = ('{"action":"case_opened","actor":"José Ruiz","at":"2026-03-01T12:00:00.123456Z","case_id":"2026-00001",'
           '"chain":"2026-00001","reason":"detainer I-247A received from ERO Atlanta","seq":1,"source_event_id":null,'
           '"status_after":"awaiting_release","status_before":null}')
DIGEST = "8ebf01e1d07c04def8f50f16ff7f647515e257be1d2794f4669fba643d21bd14"


@pytest.fixture
def local_time_in_new_york(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_an_entry_is_hashed_as_its_canonical_json_after_the_previous_hash():
    assert hashlib.sha256((GENESIS + PAYLOAD).encode("utf-8")).hexdigest() == DIGEST
    assert entry_hash(GENESIS, ENTRY) == DIGEST


def test_the_hash_does_not_depend_on_the_machines_timezone(local_time_in_new_york):
    assert time.localtime(0).tm_hour == 19  # 1969-12-31 19:00 in New York: the machine's local time has moved
    assert entry_hash(GENESIS, ENTRY) == DIGEST


def test_an_instant_read_back_as_text_hashes_as_the_instant_it_writes():
    assert entry_hash(GENESIS, {**ENTRY, "at": "2026-03-01T12:00:00.123456Z"}) == DIGEST


def test_a_recorded_head_with_no_entries_behind_it_is_named():
    assert first_broken_link([], (0, "f" * 64), chain="2026-00001") == {
        "chain": "2026-00001", "seq": 0, "id": None,
        "problem": "the chain's recorded head (entry 0) does not match its last entry (0)"}
