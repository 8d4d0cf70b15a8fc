"""The audit chain's links, checked as pure functions: each kind of tampering
is named for what it is, at the entry where it shows."""
from datetime import datetime, timedelta, timezone

from models.audit_chain import GENESIS, SYSTEM_CHAIN, chain_of, entry_hash, first_broken_link

AT = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def chain(n, name="2026-00001"):
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = {"id": 100 + seq, "chain": name, "seq": seq, "case_id": name, "at": AT + timedelta(minutes=seq), "actor": "test",
             "source_event_id": f"e{seq}", "action": "note", "status_before": "held", "status_after": "held", "reason": f"step {seq}"}
        e["prev_hash"], e["entry_hash"] = prev, entry_hash(prev, e)
        prev = e["entry_hash"]
        entries.append(e)
    return entries


def head(entries):
    return entries[-1]["seq"], entries[-1]["entry_hash"]


def test_entries_of_no_case_go_in_the_system_chain():
    assert chain_of(None) == SYSTEM_CHAIN == "system" and chain_of("2026-00001") == "2026-00001"


def test_an_intact_chain_with_its_head_has_no_broken_link():
    entries = chain(3)
    assert first_broken_link(entries, head(entries)) is None
    assert first_broken_link([], None) is None


def test_the_hash_covers_every_field_and_the_instant_to_the_microsecond():
    e = chain(1)[0]
    digest = entry_hash(GENESIS, e)
    assert len(digest) == 64 and digest == entry_hash(GENESIS, dict(e))
    for name in ("chain", "seq", "case_id", "actor", "source_event_id", "action", "status_before", "status_after", "reason"):
        assert entry_hash(GENESIS, {**e, name: "other"}) != digest, name
    assert entry_hash(GENESIS, {**e, "at": e["at"] + timedelta(microseconds=1)}) != digest
    assert entry_hash("1" * 64, e) != digest
    # the same instant in another offset is the same instant
    assert entry_hash(GENESIS, {**e, "at": e["at"].astimezone(timezone(timedelta(hours=-5)))}) == digest


def test_a_changed_entry_is_named_by_its_hash():
    entries = chain(3)
    entries[1] = {**entries[1], "reason": "rewritten"}
    assert first_broken_link(entries, head(entries)) == {
        "chain": "2026-00001", "seq": 2, "id": 102, "problem": "the entry's content does not match its hash (it was changed)"}


def test_a_rewritten_predecessor_hash_is_named_by_its_link():
    entries = chain(3)
    entries[2] = {**entries[2], "prev_hash": "f" * 64}
    assert first_broken_link(entries, head(entries)) == {
        "chain": "2026-00001", "seq": 3, "id": 103,
        "problem": "the link to the previous entry does not match (an entry before it was changed or removed)"}


def test_a_removed_middle_entry_is_named_by_its_number():
    entries = chain(3)
    del entries[1]
    assert first_broken_link(entries, head(chain(3))) == {
        "chain": "2026-00001", "seq": 2, "id": 103, "problem": "entry 2 is missing (found 3 next)"}


def test_a_removed_newest_entry_is_named_against_the_head():
    full = chain(3)
    assert first_broken_link(full[:2], head(full)) == {
        "chain": "2026-00001", "seq": 3, "id": 102,
        "problem": "entry 3 of 3 missing at the end of the chain (its newest entries were removed)"}
    assert first_broken_link(full[:1], head(full))["problem"] == (
        "entries 2 to 3 of 3 missing at the end of the chain (its newest entries were removed)")


def test_a_whole_chain_removed_is_named_from_its_head():
    full = chain(2)
    assert first_broken_link([], head(full), chain="2026-00001") == {
        "chain": "2026-00001", "seq": 1, "id": None,
        "problem": "entries 1 to 2 of 2 missing at the end of the chain (its newest entries were removed)"}


def test_a_removed_head_is_named():
    entries = chain(2)
    assert first_broken_link(entries, None) == {
        "chain": "2026-00001", "seq": 2, "id": 102,
        "problem": "the chain's recorded head is missing (it has 2 entries; was its head removed?)"}


def test_a_head_that_does_not_match_the_last_entry_is_named():
    entries = chain(3)
    assert first_broken_link(entries, (2, entries[1]["entry_hash"])) == {
        "chain": "2026-00001", "seq": 2, "id": 103,
        "problem": "the chain's recorded head (entry 2) does not match its last entry (3)"}
    assert first_broken_link(entries, (3, "0" * 64))["problem"] == (
        "the chain's recorded head (entry 3) does not match its last entry (3)")
