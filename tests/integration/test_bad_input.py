"""Bad input at the real `custody up` endpoint, case by case: oversized and
deep bodies, wrong encodings and content types, bad times, unknown types and
bookings. Each refusal is a 4xx whose reason names the field, and leaves every
table exactly as it was."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from custody.store.db import make_engine
from tests.builders import (
    copy_event,
    detainer_event,
    iso,
    lift_event,
    release_event,
    released_event,
    scheduled_event,
    service_event,
    transfer_event,
)
from tests.databases import database_url
from tests.integration.cli import custody, custody_json
from tests.integration.endpoint import NAMES_A_FIELD, TOKENS, custody_up, reasons, settled, write_senders
from tests.integration.helpers import snapshot
from tests.integration.test_cli import write_policy

pytestmark = pytest.mark.slow

TOKEN = TOKENS["everything"]
JSON = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MiB = 1_048_576


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    home = tmp_path_factory.mktemp("bad-input")
    with custody_up(home, "--no-prefect", CUSTODY_SENDERS=str(write_senders(home / "senders.toml")),
                    CUSTODY_POLICY=str(write_policy(home, mode="wso"))) as up:
        engine = make_engine(database_url(home))
        up["engine"] = engine
        yield up
        engine.dispose()


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def send(system, content: bytes | None = None, headers=None, body=None, path="/events", method="POST"):
    if body is not None:
        content = json.dumps(body).encode()
    return httpx.request(method, system["base"] + path, content=content, headers=JSON if headers is None else headers,
                         timeout=60)


def refused(system, status: int, field: str, **request):
    """The request is refused with `status`, names `field` first, and changes nothing."""
    before = settled(lambda: snapshot(system["engine"]))
    response = send(system, **request)
    assert response.status_code == status, (response.status_code, response.text[:500])
    found = reasons(response.json())
    assert found and all(NAMES_A_FIELD.match(r) for r in found), found[:3]
    assert any(r.startswith(f"{field}:") for r in found), (field, found[:3])
    assert snapshot(system["engine"]) == before, "a refused request changed the database"
    return response


def accepted(system, *events):
    for event in events:
        response = send(system, body=event)
        assert response.status_code == 201, response.text
    return response.json()


# --- size and depth -----------------------------------------------------------------------

def test_a_body_over_one_mebibyte_is_refused_whether_or_not_it_says_so_up_front(system):
    big = json.dumps({"padding": "x" * MiB}).encode()
    refused(system, 413, "body", content=big)

    def chunks():  # chunked transfer: no Content-Length to check before reading
        for _ in range(40):
            yield b" " * 65536
    refused(system, 413, "body", content=chunks())


def test_a_batch_is_at_most_a_thousand_events(system):
    refused(system, 413, "body", body=[{}] * 1001)
    # A thousand is allowed; every one is refused here, so the batch is a 422 with a result each.
    response = refused(system, 422, "type", body=[{"event_id": f"b{i}"} for i in range(1000)])
    assert len(response.json()["results"]) == 1000


def test_a_batch_in_which_every_event_is_refused_is_a_4xx_not_a_200(system):
    # Found by schemathesis: an all-refused array used to answer 200.
    t = now() - timedelta(minutes=10)
    bad = detainer_event("bb-1", "BB-1", t, a_number="A100000001")
    bad["detainer"]["a_number"] = "nope"
    refused(system, 422, "detainer.a_number", body=[bad, {"type": "nope"}])
    mixed = send(system, body=[detainer_event("bb-2", "BB-2", t, a_number="A100000002"), bad])
    assert mixed.status_code == 200
    assert [r["result"] for r in mixed.json()["results"]] == ["accepted", "rejected"]
    only_forbidden = {**release_event("bb-3", "BB-2", t), "type": "release.authorized"}
    refused(system, 403, "type", body=[only_forbidden], headers={**JSON, "Authorization": f"Bearer {TOKENS['ice']}"})


@pytest.mark.parametrize("depth", [50, 1000, 100_000])
def test_deeply_nested_json_is_refused(system, depth):
    nested_array = b"[" * depth + b"]" * depth
    nested_object = b'{"a":' * depth + b"{}" + b"}" * depth
    for content in (nested_array, nested_object):
        response = send(system, content=content)
        assert 400 <= response.status_code < 500, response.text[:300]
        assert all(NAMES_A_FIELD.match(r) for r in reasons(response.json()))
    # ... and inside an otherwise valid event, where it reaches validation.
    event = detainer_event("deep-1", "DEEP-1", now() - timedelta(minutes=10), a_number="A100000003")
    inner: dict = {}
    for _ in range(min(depth, 500)):
        inner = {"x": inner}
    refused(system, 422, "subject.name", body={**event, "subject": {**event["subject"], "name": inner}})
    refused(system, 422, "nesting", body={**event, "nesting": inner})


# --- encodings and content types ------------------------------------------------------------

def latin1_event():
    event = detainer_event("enc-1", "ENC-1", now() - timedelta(minutes=10), a_number="A100000004", name="José Peña")
    return json.dumps(event, ensure_ascii=False)


@pytest.mark.parametrize("encoding, content", [
    ("latin-1", lambda: latin1_event().encode("latin-1")),
    ("invalid UTF-8", lambda: b'{"event_id": "enc-2", "type": "\xff\xfe\xfd"}'),
    ("UTF-16 with a byte-order mark", lambda: latin1_event().encode("utf-16")),
    ("UTF-16 without one", lambda: latin1_event().encode("utf-16-le")),
    ("UTF-32", lambda: latin1_event().encode("utf-32")),
    ("a lone surrogate as UTF-8 bytes", lambda: b'{"event_id": "enc-3", "type": "\xed\xa0\x80"}'),
])
def test_a_body_that_is_not_utf8_is_refused(system, encoding, content):
    refused(system, 400, "body", content=content())


def test_a_utf8_byte_order_mark_is_ignored_and_the_text_is_kept_exactly(system):
    response = send(system, content=b"\xef\xbb\xbf" + latin1_event().encode("utf-8"))
    assert response.status_code == 201, response.text
    with system["engine"].connect() as conn:
        [(name,)] = conn.exec_driver_sql("select subject_name from detainers where event_id = 'enc-1'").fetchall()
    assert name == "José Peña"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml",
                                          "application/json; charset=latin-1", "application/json; charset=utf-16"])
def test_a_body_not_declared_as_utf8_json_is_refused(system, content_type):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    event = detainer_event("ct-1", "CT-1", now() - timedelta(minutes=10), a_number="A100000005")
    refused(system, 415, "content-type", body=event, headers=headers)


def test_json_with_a_charset_parameter_is_accepted_and_compressed_bodies_are_not(system):
    event = detainer_event("ct-2", "CT-2", now() - timedelta(minutes=10), a_number="A100000006")
    import gzip
    refused(system, 415, "content-encoding", content=gzip.compress(json.dumps(event).encode()),
            headers={**JSON, "Content-Encoding": "gzip"})
    ok = send(system, body=event, headers={**JSON, "Content-Type": "Application/JSON; charset=UTF-8"})
    assert ok.status_code == 201, ok.text


def test_a_lone_surrogate_escape_is_refused_not_echoed(system):
    # "\ud800" is legal JSON text but no UTF-8 output can carry it: the id used
    # to be echoed in the rejection, and encoding the answer failed (a 500).
    body = b'{"event_id": "\\ud800", "type": "release.authorized"}'
    refused(system, 422, "event_id", content=body)
    body = b'[{"event_id": "x\\udfff", "type": "nope\\ud800"}]'
    response = refused(system, 422, "type", content=body)
    assert "event_id" not in response.json()["results"][0]


# --- times ------------------------------------------------------------------------------------

@pytest.mark.parametrize("occurred_at, says", [
    ("2026-03-11T10:00:00", "needs a UTC offset"),
    ("2026-03-11 10:00", "RFC 3339"),
    (1773230400, "RFC 3339"),
    ("0001-01-01T00:19:01+19:51", "out of range"),  # once a 500 (OverflowError)
    ("9999-12-31T23:59:59-14:00", "out of range"),
])
def test_times_without_an_offset_or_out_of_range_are_refused(system, occurred_at, says):
    event = {**detainer_event("t-1", "T-1", now(), a_number="A100000007"), "occurred_at": occurred_at}
    response = refused(system, 422, "occurred_at", body=event)
    assert says in response.json()["reason"]


def test_a_time_more_than_five_minutes_ahead_is_refused_and_a_little_skew_is_not(system):
    ahead = detainer_event("t-2", "T-2", now() + timedelta(minutes=6), a_number="A100000008")
    assert "in the future" in refused(system, 422, "occurred_at", body=ahead).json()["reason"]
    issued = detainer_event("t-2", "T-2", now(), a_number="A100000008")
    issued["detainer"]["issued_at"] = iso(now() + timedelta(days=365))
    refused(system, 422, "detainer.issued_at", body=issued)
    accepted(system, detainer_event("t-3", "T-3", now() + timedelta(minutes=3), a_number="A100000009"))


# --- unknown types and bookings -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["detainer.recieved", "DETAINER.RECEIVED", "", "release.*", 7, None, ["release.authorized"]])
def test_unknown_event_types_are_refused(system, kind):
    event = {**release_event("u-1", "U-1", now()), "type": kind}
    refused(system, 422, "type", body=event)


def test_events_about_an_unknown_booking_are_kept_without_opening_a_case(system):
    t = now() - timedelta(minutes=10)
    for event in (release_event("ub-1", "UB-1", t), service_event("ub-2", "UB-2", t, badge="W-1024")):
        result = accepted(system, event)
        assert result["outcome"].startswith("kept: no case for this booking yet") and "case_id" not in result
    assert custody(system["env"], "case", "show", "UB-1", check=False).returncode == 1
    # When the detainer comes, the case opens knowing the release.
    accepted(system, detainer_event("ub-3", "UB-1", t - timedelta(hours=1), a_number="A100000010"))
    assert custody_json(system["env"], "case", "show", "UB-1")["status"] == "release_authorized"


@pytest.mark.parametrize("booking", ["", " B-1", "B 1", "B-1'; DROP TABLE cases;--", "../../etc/passwd", "x" * 129, 12345])
def test_a_malformed_booking_number_is_refused(system, booking):
    refused(system, 422, "booking_number", body={**release_event("mb-1", "B", now()), "booking_number": booking})


# --- NUL characters ------------------------------------------------------------------------------

def _string_paths(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _string_paths(value, (*path, key))
    elif isinstance(node, str) and path[-1] != "type":
        yield path


def _nul_cases():
    t = datetime(2026, 3, 11, 12, tzinfo=timezone.utc)
    events = [detainer_event("n-1", "N-1", t, a_number="A100000011"), copy_event("n-2", "N-2", t),
              lift_event("n-3", "N-3", t), transfer_event("n-4", "N-4", t), released_event("n-5", "N-5", t),
              service_event("n-6", "N-6", t), scheduled_event("n-7", "N-7", t, t + timedelta(days=1))]
    return [(e["type"], p) for e in events for p in _string_paths(e)]


@pytest.mark.parametrize("kind, path", _nul_cases(), ids=lambda v: v if isinstance(v, str) else ".".join(v))
def test_a_nul_character_in_any_field_is_refused_naming_the_field_on_every_database(system, kind, path):
    # PostgreSQL text cannot hold U+0000 at all (SQLite can): a NUL must be a
    # 422 naming its field on both, never a 500 from the database.
    t = now() - timedelta(minutes=5)
    build = {"detainer.received": lambda: detainer_event("nul-1", "NUL-1", t, a_number="A100000012"),
             "detainer.copy_served": lambda: copy_event("nul-1", "NUL-1", t),
             "detainer.lifted": lambda: lift_event("nul-1", "NUL-1", t),
             "custody.transferred": lambda: transfer_event("nul-1", "NUL-1", t),
             "inmate.released": lambda: released_event("nul-1", "NUL-1", t),
             "warrant.served": lambda: service_event("nul-1", "NUL-1", t),
             "release.scheduled": lambda: scheduled_event("nul-1", "NUL-1", t, t + timedelta(days=1))}[kind]
    event = build()
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = node[path[-1]][:2] + "\u0000" + node[path[-1]][2:]
    refused(system, 422, ".".join(path), body=event)


def test_a_nul_character_in_a_field_name_is_refused_naming_it(system):
    event = {**release_event("nul-2", "NUL-2", now()), "reas\u0000on": "bond_posted"}
    response = refused(system, 422, '"reas\\u0000on"', body=event)
    assert "\u0000" not in response.text


def test_a_member_named_twice_is_refused_naming_it(system):
    body = json.dumps(release_event("twice-1", "TW-1", now()))[:-1] + ', "booking_number": "TW-2"}'
    refused(system, 400, "booking_number", content=body.encode())
    refused(system, 400, "detainer.form", content=json.dumps(detainer_event("twice-2", "TW-2", now())).replace(
        '"form": "I-247A"', '"form": "I-247G", "form": "I-247A"').encode())
    # In a batch, the event that names a member twice is refused on its own, like any other bad event of it.
    batch = json.dumps([release_event("twice-3", "TW-3", now()), detainer_event("twice-4", "TW-4", now())])
    response = send(system, content=batch.replace('"form": "I-247A"', '"form": "I-247G", "form": "I-247A"').encode())
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"event_id": "twice-3", "result": "accepted", "outcome": "kept: no case for this booking yet; it applies when a detainer arrives"},
        {"event_id": "twice-4", "result": "rejected", "reason": "detainer.form: is named twice in one JSON object; send each member once"}]


@pytest.mark.parametrize("character", ["\u202e", "\u2066", "\u200f", "\u200b", "\u200d", "\ufeff", "\u00ad", "\U000e0041"])
@pytest.mark.parametrize("path", [("subject", "name"), ("detainer", "issuing_office")])
def test_invisible_or_direction_changing_characters_in_free_text_are_refused_naming_the_field(system, character, path):
    event = detainer_event("fmt-1", "FMT-1", now() - timedelta(minutes=5), a_number="A100000013")
    event[path[0]][path[1]] = f"Ana{character} Ruiz"
    response = refused(system, 422, ".".join(path), body=event)
    assert f"U+{ord(character):04X}" in response.text
