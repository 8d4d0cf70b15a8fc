"""Hypothesis-generated event bodies through `custody ingest`: in-process for
the many examples (the real command's `main`, a real SQLite file), and a few
times as a real subprocess. Every line gets `accepted`, `duplicate` or
`rejected: FIELD: ...`; nothing crashes; a refused line changes nothing (but a
service refused on its merits, kept for its case's record); an accepted one is
stored exactly as sent."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from custody.cli import main
from custody.config import Settings
from custody.store import schema as t
from custody.store.db import make_engine
from tests.builders import detainer_event, release_event
from tests.databases import database_url
from tests.integration.cli import ROOT, custody, custody_env
from tests.integration.endpoint import NAMES_A_FIELD
from tests.integration.fuzz_events import INJECTIONS, lines, now
from tests.integration.helpers import snapshot
from tests.integration.test_cli import write_policy

LINE_REASONS = {"not valid JSON", "not UTF-8 text"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    env = {"CUSTODY_HOME": str(tmp_path), "CUSTODY_POLICY": str(write_policy(tmp_path, mode="wso")),
           "CUSTODY_PREFECT": "off", "CUSTODY_DATABASE_URL": database_url(tmp_path)}
    for key in list(os.environ):
        if key.startswith("CUSTODY_"):
            monkeypatch.delenv(key)
    for key, value in {**Settings.from_env(env).prefect_env(), **env}.items():
        monkeypatch.setenv(key, value)  # so that main() adds nothing to this process's environment
    assert main(["roster", "load", str(ROOT / "examples" / "roster.csv")], out=io.StringIO()) == 0
    engine = make_engine(database_url(tmp_path))
    yield tmp_path, engine
    engine.dispose()


def ingest_in_process(home, data: bytes, via_stdin: bool, monkeypatch) -> tuple[int, list[dict]]:
    out = io.StringIO()
    if via_stdin:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        code = main(["ingest", "-", "--json"], out=out)
    else:
        path = home / "events.jsonl"
        path.write_bytes(data)
        code = main(["ingest", str(path), "--json"], out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def stored_body(engine, event_id: str):
    with engine.connect() as conn:
        rows = conn.execute(select(t.inbox.c.body).where(t.inbox.c.event_id == event_id)).fetchall()
    return json.loads(rows[0][0]) if rows else None


def expected_line_numbers(data: bytes) -> list[int]:
    """Which lines get a result: all but those of JSON whitespace only (after a
    UTF-8 byte-order mark at the start); a UTF-16 or UTF-32 file is one refusal."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return [1]
    parts = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    return [n for n, part in enumerate(parts, start=1) if part.strip(b" \t\r")]


def test_every_line_is_accepted_or_refused_naming_the_field_and_refusals_change_nothing(home, monkeypatch):
    folder, engine = home
    seen = {"accepted": 0, "duplicate": 0, "rejected": 0}

    @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(line=lines(), twice=st.booleans(), via_stdin=st.booleans())
    def ingest_line(line, twice, via_stdin):
        before = snapshot(engine)
        data = line + b"\n" + (line + b"\n" if twice else b"")
        code, results = ingest_in_process(folder, data, via_stdin, monkeypatch)
        assert [r["line"] for r in results] == expected_line_numbers(data), results
        for result in results:
            seen[result["result"]] += 1
            if result["result"] == "rejected":
                assert result["reason"] in LINE_REASONS or NAMES_A_FIELD.match(result["reason"]), result
        assert code == (1 if any(r["result"] == "rejected" for r in results) else 0)
        kept = results and (results[0]["result"] == "accepted" or results[0].get("case_id"))  # or a refused service
        if not kept:
            assert snapshot(engine) == before, results
        else:
            sent = json.loads(line.decode("utf-8").removeprefix("\ufeff"))
            assert stored_body(engine, results[0]["event_id"]) == sent  # exactly as sent, injection strings and all
        if twice and results and results[0]["result"] in ("accepted", "duplicate"):
            assert results[1]["result"] == "duplicate"

    ingest_line()
    assert min(seen.values()) > 0, seen  # the generator reached every outcome


def test_ingest_as_a_real_process_reads_json_lines_byte_for_byte(tmp_path):
    """Stdin of the real command: CRLF endings, a byte-order mark, U+2028 inside
    a name (str.splitlines used to cut the line there), latin-1 and invalid
    UTF-8 among good lines, a lone surrogate escape, deep nesting."""
    env = custody_env(tmp_path, CUSTODY_POLICY=str(write_policy(tmp_path, mode="wso")), CUSTODY_PREFECT="off")
    t = now() - timedelta(hours=1)
    name = "Ana\u2028María\u2029 Zoë\x0c"[:-1]
    good = json.dumps(detainer_event("p-1", "P-1", t, a_number="A400000011", name=name), ensure_ascii=False).encode()
    latin = json.dumps(detainer_event("p-2", "P-2", t, a_number="A400000012", name="José"), ensure_ascii=False).encode("latin-1")
    injected = json.dumps(detainer_event("p-3", "P-3", t, a_number="A400000013", name=INJECTIONS[0])).encode()
    data = b"\r\n".join([b"\xef\xbb\xbf" + good, latin, b"\xff\xfe not json", b'{"event_id": "\\ud800", "type": 1}',
                         b"[" * 5000 + b"]" * 5000, b"", injected]) + b"\r\n"
    result = subprocess.run([sys.executable, "-m", "custody", "ingest", "-", "--json"], input=data, capture_output=True,
                            env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 1 and result.stderr == b"", result.stderr
    got = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(r["line"], r["result"], r.get("reason")) for r in got] == [
        (1, "accepted", None), (2, "rejected", "not UTF-8 text"), (3, "rejected", "not UTF-8 text"),
        (4, "rejected", got[3]["reason"]), (5, "rejected", "not valid JSON"), (7, "accepted", None)]
    assert got[3]["reason"].startswith("type:") and "event_id" not in got[3]  # the surrogate id is not echoed
    engine = make_engine(database_url(tmp_path))
    try:
        assert stored_body(engine, "p-1")["subject"]["name"] == name
        assert stored_body(engine, "p-3")["subject"]["name"] == INJECTIONS[0]
    finally:
        engine.dispose()


def test_a_utf16_file_is_refused_line_by_line_and_stores_nothing(tmp_path):
    env = custody_env(tmp_path, CUSTODY_POLICY=str(write_policy(tmp_path, mode="wso")), CUSTODY_PREFECT="off")
    path = tmp_path / "utf16.jsonl"
    path.write_bytes((json.dumps(release_event("u-1", "U-1", now())) + "\n").encode("utf-16"))
    result = custody(env, "ingest", str(path), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout == "line 1: rejected: not UTF-8 text\n"
    assert custody(env, "case", "show", "U-1", check=False).returncode == 1
    engine = make_engine(database_url(tmp_path))
    try:
        assert stored_body(engine, "u-1") is None
    finally:
        engine.dispose()


def inbox_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql("select event_id from event_inbox")}


def test_generated_files_through_the_real_command(tmp_path):
    """A few generated files through `custody ingest` as an operator runs it:
    one result per line, no traceback, the exit code says whether anything was
    refused, and what was stored is exactly what was reported accepted (or a
    service refused on its merits, kept for the case's record)."""
    env = custody_env(tmp_path, CUSTODY_POLICY=str(write_policy(tmp_path, mode="wso")), CUSTODY_PREFECT="off")
    subprocess.run([sys.executable, "-m", "custody", "roster", "load", str(ROOT / "examples" / "roster.csv")], env=env,
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    engine = make_engine(database_url(tmp_path))

    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(lines(), min_size=1, max_size=20))
    def run_file(generated):
        data = b"\n".join(generated) + b"\n"
        before, ids_before = snapshot(engine), inbox_ids(engine)
        result = subprocess.run([sys.executable, "-m", "custody", "ingest", "-", "--json"], input=data,
                                capture_output=True, env=env, cwd=ROOT, timeout=120)
        assert result.stderr == b"", result.stderr.decode(errors="replace")[-2000:]
        results = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert [r["line"] for r in results] == expected_line_numbers(data)
        assert result.returncode == (1 if any(r["result"] == "rejected" for r in results) else 0)
        # Kept: the accepted events, and the services refused on their merits (the
        # rejection names their case: the attempt is on its record).
        kept = {r["event_id"] for r in results if r["result"] == "accepted" or (r["result"] == "rejected" and r.get("case_id"))}
        assert inbox_ids(engine) - ids_before == kept
        if not kept:
            assert snapshot(engine) == before

    try:
        run_file()
    finally:
        engine.dispose()
