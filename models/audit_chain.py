"""The audit trail's hash chain: each entry carries the hash of the one before
it in its chain (one chain per case; `system` for entries of no case), so an
entry edited or removed behind the software's back is found by `custody audit
verify`. Pure functions: no database."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"
FIELDS = ("chain", "seq", "case_id", "at", "actor", "source_event_id", "action", "status_before", "status_after", "reason")


def chain_of(case_id: str | None) -> str:
    return case_id or SYSTEM_CHAIN


def _at(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    body = {name: (_at(entry[name]) if name == "at" else entry[name]) for name in FIELDS}
    payload = prev_hash + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def first_broken_link(entries: Iterable[Mapping[str, Any]], head: tuple[int, str] | None = None,
                      chain: str | None = None) -> dict[str, Any] | None:
    """Entries of one chain in seq order, and the chain's head as recorded when
    it was last appended to (its last seq and that entry's hash; None: none is
    recorded). The first entry whose sequence number, predecessor hash or own
    hash does not check out, or the tail that is missing, with what is wrong."""
    prev, expected_seq, last = GENESIS, 1, None
    for entry in entries:
        chain, last = entry["chain"], entry
        if entry["seq"] != expected_seq:
            return {"chain": entry["chain"], "seq": expected_seq, "id": entry["id"],
                    "problem": f"entry {expected_seq} is missing (found {entry['seq']} next)"}
        if entry["prev_hash"] != prev:
            return {"chain": entry["chain"], "seq": entry["seq"], "id": entry["id"],
                    "problem": "the link to the previous entry does not match (an entry before it was changed or removed)"}
        if entry_hash(prev, entry) != entry["entry_hash"]:
            return {"chain": entry["chain"], "seq": entry["seq"], "id": entry["id"],
                    "problem": "the entry's content does not match its hash (it was changed)"}
        prev, expected_seq = entry["entry_hash"], expected_seq + 1
    found = expected_seq - 1
    if head is None:
        if last is None:
            return None
        return {"chain": chain, "seq": found, "id": last["id"],
                "problem": f"the chain's recorded head is missing (it has {found} entries; was its head removed?)"}
    seq, digest = head
    if seq > found:
        missing = f"entry {seq}" if seq == found + 1 else f"entries {found + 1} to {seq}"
        return {"chain": chain, "seq": found + 1, "id": last["id"] if last else None,
                "problem": f"{missing} of {seq} missing at the end of the chain (its newest entries were removed)"}
    if seq < found or digest != prev:
        return {"chain": chain, "seq": seq, "id": last["id"] if last else None,
                "problem": f"the chain's recorded head (entry {seq}) does not match its last entry ({found})"}
    return None
