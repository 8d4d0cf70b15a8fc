"""The `custody` command as a user runs it: real processes, a real database (SQLite or PostgreSQL)."""
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from tests.builders import BASE_POLICY, detainer_event, lift_event, release_event
from tests.databases import database_url, has_tables
from tests.integration.cli import ROOT, custody, custody_env, custody_json, jsonl

REQUIRED = {"case_id", "booking_number", "status", "t0", "deadline_at", "hold_authorized", "timeline"}


def now():
    return datetime.now(timezone.utc).replace(microsecond=0)


def step(name: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "one_case.py"), name], capture_output=True,
                          text=True, check=True).stdout


def test_the_readme_walkthrough(tmp_path):
    env = custody_env(tmp_path)
    assert "added 3" in custody(env, "roster", "load", str(ROOT / "examples" / "roster.csv")).stdout
    out = custody(env, "ingest", "-", stdin=step("detainer")).stdout
    assert out.splitlines() == ["ex-det-1: accepted (2026-00001)", "ex-copy-1: accepted (2026-00001)"]
    assert custody_json(env, "case", "show", "B-2026-0412")["status"] == "awaiting_release"
    custody(env, "ingest", "-", stdin=step("release"))
    [held] = custody_json(env, "cases")
    assert held["status"] == "held" and held["hold_authorized"] is True and held["served_by"] == "W-1024"
    t0 = datetime.fromisoformat(held["t0"].replace("Z", "+00:00"))
    assert held["deadline_at"] == (t0 + timedelta(hours=48)).isoformat().replace("+00:00", "Z")
    again = custody(env, "ingest", "-", stdin=step("release")).stdout
    assert [line.split(": ")[1].split(" ")[0] for line in again.splitlines()] == ["duplicate", "duplicate"]
    custody(env, "ingest", "-", stdin=step("pickup"))
    view = custody_json(env, "case", "show", held["case_id"])
    assert REQUIRED <= set(view) and view["status"] == "transferred"
    assert [i["type"] for i in view["timeline"] if i["kind"] == "event"] == [
        "detainer.received", "detainer.copy_served", "release.authorized", "warrant.served", "custody.transferred"]
    assert custody_json(env, "cases") == []
    human = custody(env, "case", "show", "B-2026-0412").stdout
    assert "transferred" in human and ("EST" in human or "EDT" in human)


def test_ingest_reports_each_line_and_exits_nonzero_on_any_rejection(tmp_path):
    env = custody_env(tmp_path)
    t = now() - timedelta(hours=1)
    text = jsonl(detainer_event("d1", "B1", t)) + "not json\n" + jsonl({**release_event("r1", "B1", t), "reason": "escaped"})
    result = custody(env, "ingest", "-", stdin=text, check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "d1: accepted (2026-00001)"
    assert lines[1] == "line 2: rejected: not valid JSON"
    assert lines[2].startswith("r1: rejected: reason:")


def test_ingest_refuses_a_member_named_twice_and_invisible_characters_naming_the_field(tmp_path):
    env = custody_env(tmp_path)
    t = now() - timedelta(hours=1)
    twice = jsonl(release_event("r1", "B1", t))[:-2] + ', "booking_number": "B2"}\n'
    nested = jsonl(detainer_event("d2", "B3", t)).replace('"requests_custody": true', '"requests_custody": false, "requests_custody": true')
    reversed_name = detainer_event("d3", "B4", t)
    reversed_name["subject"]["name"] = "Ana \u202eazid\u202c Ruiz"  # prints as "Ana dizaa Ruiz"
    zero_width = {**lift_event("l1", "B5", t), "lifted_by": "ERO\u200b Atlanta"}
    result = custody(env, "ingest", "-", stdin=twice + nested + jsonl(reversed_name, zero_width), check=False)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "line 1: rejected: booking_number: is named twice in one JSON object; send each member once",
        "line 2: rejected: detainer.requests_custody: is named twice in one JSON object; send each member once",
        "d3: rejected: subject.name: must not contain invisible or direction-changing characters (U+202E at position 5)",
        "l1: rejected: lifted_by: must not contain invisible or direction-changing characters (U+200B at position 4)",
    ]
    assert custody_json(env, "cases") == []


def test_cases_are_listed_soonest_deadline_first_and_undated_last(tmp_path):
    env = custody_env(tmp_path, CUSTODY_POLICY=str(write_policy(tmp_path, mode="detainer")))
    t = now()
    custody(env, "ingest", "-", stdin=jsonl(
        detainer_event("d1", "B1", t - timedelta(hours=5), a_number="A000000001"),
        detainer_event("d2", "B2", t - timedelta(hours=5), a_number="A000000002"),
        detainer_event("d3", "B3", t - timedelta(hours=5), a_number="A000000003"),
        release_event("r2", "B2", t - timedelta(hours=1)),
        release_event("r3", "B3", t - timedelta(hours=2))))
    listed = custody_json(env, "cases")
    assert [c["booking_number"] for c in listed] == ["B3", "B2", "B1"]
    assert listed[-1]["deadline_at"] is None and listed[0]["deadline_at"].endswith("Z")
    # each is the very object `case show` gives for the case, timeline and detainers included
    for listed_case in listed:
        shown = custody_json(env, "case", "show", listed_case["case_id"])
        assert listed_case == {**shown, "seconds_left": listed_case["seconds_left"]}
        assert listed_case["timeline"] and listed_case["detainers"]


def test_a_bad_roster_is_refused_whole_naming_line_and_field(tmp_path):
    env = custody_env(tmp_path)
    good = tmp_path / "good.csv"
    good.write_text("badge,name,certified_on,expires_on,facility\nW-1,One,2025-01-01,2027-01-01,RCJ\n")
    custody(env, "roster", "load", str(good))
    bad = tmp_path / "bad.csv"
    bad.write_text("badge,name,certified_on,expires_on,facility\nW-7,Seven,2025-01-01,2027-01-01,RCJ\nW-8,Eight,2025-13-01,2027-01-01,RCJ\n")
    result = custody(env, "roster", "load", str(bad), check=False)
    assert result.returncode == 2 and "roster line 3: certified_on" in result.stderr
    assert [o["badge"] for o in custody_json(env, "roster", "show")] == ["W-1"]


def test_a_policy_above_48_hours_is_refused_at_start(tmp_path):
    env = custody_env(tmp_path, CUSTODY_POLICY=str(write_policy(tmp_path, limit="72h")))
    result = custody(env, "cases", check=False)
    assert result.returncode == 2 and "hold.limit" in result.stderr
    assert not has_tables(database_url(tmp_path))  # refused before the database was touched


def test_sweep_reports_what_it_did(tmp_path):
    env = custody_env(tmp_path, CUSTODY_POLICY=str(write_policy(tmp_path, mode="detainer")))
    assert custody_json(env, "sweep")["actions"] == []
    assert "nothing due" in custody(env, "sweep").stdout


def write_policy(tmp_path, **hold_or_jurisdiction):
    lines = []
    data = json.loads(json.dumps(BASE_POLICY))
    for key, value in hold_or_jurisdiction.items():
        (data["jurisdiction"] if key in data["jurisdiction"] else data["hold"])[key] = value
    for section in ("jurisdiction", "hold"):
        lines.append(f"[{section}]")
        for key, value in data[section].items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "policy.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_case_record_is_complete_attributed_and_verified(tmp_path):
    env = custody_env(tmp_path)
    custody(env, "roster", "load", str(ROOT / "examples" / "roster.csv"))
    custody(env, "ingest", "-", stdin=step("detainer"))
    custody(env, "ingest", "-", stdin=step("release"))
    record = custody(env, "case", "record", "B-2026-0412").stdout
    assert "CONTAINS PERSONAL DATA" in record.splitlines()[1]
    assert "VERIFIED" in record and "Example Person" in record and "A201555012" in record and "1988-04-02" in record
    for text in ("EVENT detainer.received", "EVENT warrant.served", "hold_started [release_authorized -> held] by cli:",
                 "release-notice to ice", "W-1024"):
        assert text in record, text
    assert " EST" in record or " EDT" in record
    assert custody(env, "case", "record", "NOPE", check=False).returncode == 1
