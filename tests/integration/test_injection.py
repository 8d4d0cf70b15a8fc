"""SQL, template and markup injection strings in every free-text field, sent to
the real `custody up` endpoint: each is stored as sent, breaks no table, and
comes out as the same characters wherever it is shown: the notification bodies
(through the relay and Apprise to real SMTP and HTTP receivers), `custody case
record`, `custody case show` and the timeline artifact's Markdown."""
from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import markdown_it
import pytest
from sqlalchemy import inspect

from custody.adapters.apprise_relay import Recipients, Relay
from custody.adapters.prefect.artifacts import timeline_markdown
from custody.service.core import Core
from custody.service.views import case_detail
from custody.store import schema as t
from custody.store.db import make_engine
from models.clock import SystemClock
from models.policy import load_policy
from tests.builders import copy_event, detainer_event, iso, lift_event, release_event, released_event, scheduled_event, transfer_event
from tests.databases import database_url
from tests.integration.cli import custody, custody_json
from tests.integration.endpoint import TOKENS, custody_up, write_senders
from tests.integration.fuzz_events import INJECTIONS
from tests.integration.helpers import rows
from tests.integration.receivers import JsonReceiver, SmtpReceiver, apprise_yaml
from tests.integration.test_cli import write_policy

pytestmark = pytest.mark.slow

FIELDS = ["name", "issuing_office", "served_by", "language", "acknowledged_by", "lifted_by", "note", "agency",
          "officer_name", "released_by"]


def payloads_for(case: int) -> dict[str, str]:
    """Every field gets a different injection string in each case; over the
    cases every string reaches some field."""
    return {field: INJECTIONS[(case * len(FIELDS) + i) % len(INJECTIONS)] for i, field in enumerate(FIELDS)}


def case_events(k: int, p: dict[str, str], t: datetime) -> list[dict]:
    booking = f"INJ-{k}"
    detainer = detainer_event(f"inj-{k}-d", booking, t - timedelta(hours=3), a_number=f"A50000000{k}", name=p["name"])
    detainer["detainer"]["issuing_office"] = p["issuing_office"]
    copy = {**copy_event(f"inj-{k}-c", booking, t - timedelta(hours=2)), "served_by": p["served_by"], "language": p["language"]}
    scheduled = scheduled_event(f"inj-{k}-s", booking, t - timedelta(hours=2), t + timedelta(days=3))
    ack = {"event_id": f"inj-{k}-a", "type": "notice.acknowledged", "occurred_at": iso(t),
           "booking_number": booking, "notice": "advance-notice", "acknowledged_by": p["acknowledged_by"]}
    lift = {**lift_event(f"inj-{k}-l", booking, t - timedelta(minutes=30)), "lifted_by": p["lifted_by"], "note": p["note"]}
    transfer = {**transfer_event(f"inj-{k}-x", booking, t - timedelta(minutes=20)), "agency": p["agency"],
                "officer_name": p["officer_name"]}
    released = {**released_event(f"inj-{k}-o", booking, t - timedelta(minutes=10)), "released_by": p["released_by"]}
    release = release_event(f"inj-{k}-r", booking, t - timedelta(minutes=40))
    # Three endings, so that each closing field becomes the case's stated reason once.
    ending = {0: [lift, transfer, released], 1: [transfer, lift, released], 2: [release, released, lift, transfer]}[k % 3]
    return [detainer, copy, scheduled, ack, *ending]


@pytest.fixture
def receivers(tmp_path):
    web, mail = JsonReceiver(), SmtpReceiver()
    path = tmp_path / "recipients.yml"
    path.write_text(apprise_yaml(web.port, mail.port, "inj-secret-0123"))
    yield web, mail, path
    web.close()
    mail.close()


def test_injection_strings_in_every_text_field_are_stored_and_shown_as_the_same_characters(tmp_path, receivers):
    web, mail, recipients = receivers
    policy_path = write_policy(tmp_path, mode="wso")
    with custody_up(tmp_path, "--no-prefect", CUSTODY_SENDERS=str(write_senders(tmp_path / "senders.toml")),
                    CUSTODY_POLICY=str(policy_path)) as up:
        engine = make_engine(database_url(tmp_path))
        try:
            with engine.connect() as conn:
                tables = sorted(inspect(conn).get_table_names())
            t_now = datetime.now(timezone.utc).replace(microsecond=0)
            sent: dict[str, dict] = {}
            cases = {}
            for k in range(3):
                p = payloads_for(k)
                for event in case_events(k, p, t_now):
                    response = httpx.post(f"{up['base']}/events", json=event, timeout=30,
                                          headers={"Authorization": f"Bearer {TOKENS['everything']}"})
                    assert response.status_code == 201, (event["type"], response.text)
                    sent[event["event_id"]] = event
                    cases[k] = response.json().get("case_id") or cases.get(k)

            # Stored as sent; no table lost or added; one case per booking.
            with engine.connect() as conn:
                assert sorted(inspect(conn).get_table_names()) == tables
            stored = {r["event_id"]: json.loads(r["body"]) for r in rows(engine, t.inbox)}
            assert stored == sent
            assert sorted(d["subject_name"] for d in rows(engine, t.detainers)) == sorted(payloads_for(k)["name"] for k in range(3))
            assert len(rows(engine, t.cases)) == 3

            # The relay delivers every notification through Apprise, the bodies unchanged.
            core = Core(engine, load_policy(policy_path), SystemClock())
            relay = Relay(core, Recipients(recipients, respect_rate_limits=False), "injection-test")
            while relay.pass_once().examined:
                pass
            outbox = rows(engine, t.outbox)
            # the prompts whose purpose passed before the relay ran (a request to serve for a person
            # since released) are dropped with their reason; every other row is delivered
            assert outbox and {r["state"] for r in outbox} <= {"sent", "dropped"}
            assert all(r["dropped_reason"] and r["recipient_group"] != "ice" for r in outbox if r["state"] == "dropped")
            outbox = [r for r in outbox if r["state"] == "sent"]
            lines = lambda text: text.replace("\r\n", "\n").rstrip("\n")  # mail ends its lines with CRLF
            delivered = [(m["path"].strip("/"), m["title"], m["message"]) for m in web.received]
            delivered += [("release-desk", subject, text) for _, subject, text in mail.texts()]
            for row in outbox:
                matches = [body for group, title, body in delivered if group == row["recipient_group"] and title == row["subject"]]
                assert matches and all(lines(body) == row["body"] for body in matches), (row["subject"], matches[:1], row["body"])
            for _, message in mail.messages:  # the HTML part of the mail shows the text, not markup made of it
                part = message.get_body(preferencelist=("html",))
                if part is not None:
                    markup = part.get_content()
                    assert not re.search(r"<(script|img|a)\b", markup, re.I), markup

            for k in range(3):
                p = payloads_for(k)
                case_id = cases[k]
                bodies = [r["body"] for r in outbox if r["case_id"] == case_id]
                assert any(f"Person: {p['name']}." in b for b in bodies)  # to ICE, the desk, the officers
                reason = {0: f"Why: lifted by {p['lifted_by']} before T0: {p['note']}.",
                          1: f"Why: handed to {p['agency']} ({p['officer_name']}).",
                          2: f"Why: released by {p['released_by']}."}[k % 3]
                assert any(reason in b for b in bodies), (reason, bodies)

                # The court's record and the case view: the same characters.
                record = custody(up["env"], "case", "record", case_id).stdout
                assert f"subject {p['name']}, born" in record and f"from {p['issuing_office']}, issued" in record
                # (A lift after the case closed is recorded without its note.)
                for field in FIELDS:
                    if field not in ("name", "issuing_office") and not (field == "note" and k % 3):
                        assert p[field] in record, (field, p[field])
                view = custody_json(up["env"], "case", "show", case_id)
                reasons = " ".join(i.get("reason") or "" for i in view["timeline"])
                assert f"by {p['served_by']} in {p['language']}" in reasons and f"({p['acknowledged_by']})" in reasons

                # The timeline artifact renders every string as text, never as markup.
                with core.uow(read_only=True) as uow:
                    detail = case_detail(uow, uow.cases.get(case_id), core.policy, core.clock.now())
                rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(
                    timeline_markdown(detail, core.policy))
                # The one link is ours, to the custody board; nothing typed becomes one.
                assert re.findall(r"<a [^>]*>", rendered) == ['<a href="/artifacts/key/custody-board">'], rendered
                tags = set(re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", rendered))
                assert tags <= {"h1", "ul", "li", "strong", "p", "a", "table", "thead", "tbody", "tr", "th", "td"}, tags
                text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
                for field in ("served_by", "language", "lifted_by", "acknowledged_by", "agency", "officer_name", "released_by"):
                    assert p[field] in text, (field, p[field])
        finally:
            engine.dispose()
