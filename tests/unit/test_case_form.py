"""The officer's form (flows/case.py, custody/service/officer_report.py): its Markdown
shows when the window closes and a refusal as the characters it holds,
whatever the officer typed; a submitted form becomes one event, the same
wherever it is read."""
from __future__ import annotations

import html
import re

import markdown_it
import pytest

from flows.case import form_description, waiting_until
from models.events import EventRejected, parse_event
from tests.builders import policy, service_event, utc

NOW = utc(2026, 3, 11, 12)
VIEW = {"case_id": "2026-00007", "booking_number": "B_2026_0100", "facility": "RCJ", "warrant_form": "I-205",
        "warrant_number": "I205-2026-11873", "t0": "2026-03-11T11:50:00Z", "deadline_at": "2026-03-13T11:50:00Z",
        "release_authorized_at": "2026-03-11T11:50:00Z"}
TYPED = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "![x](http://attacker.example/x.png)",
    "**bold** _it_ `code` ~~gone~~ | cell",
    "W-1\n# Heading\n* item",
]


def rendered(markdown: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable("strikethrough").enable("table").render(markdown)


def shown_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def refusal_for(badge: str) -> str:
    with pytest.raises(EventRejected) as refused:
        parse_event({**service_event("f-1", "B1", utc(2026, 3, 11, 11)), "officer_badge": badge}, NOW)
    return str(refused.value)


@pytest.mark.parametrize("typed", TYPED)
def test_a_refusal_is_shown_as_its_characters_not_as_markup(typed):
    # A reason as intake words it (quoting its pattern), and one quoting what was typed.
    refusal = f"{refusal_for(typed)}; officer_badge: {typed} is not on the WSO roster"
    markup = rendered(form_description(VIEW, refusal, policy(), NOW))
    # Everything after the form's own facts is one paragraph, whose only markup is the form's own emphasis.
    tail = markup.split("immigration status.</p>", 1)[1]
    [paragraph] = re.findall(r"<p>(.*?)</p>", tail, re.S)
    assert tail.strip() == f"<p>{paragraph}</p>" and re.findall(r"<(\w+)", paragraph) == ["strong"], tail
    # The characters of the refusal, a line break shown as a space.
    assert f"The last report was refused: {refusal.replace(chr(10), ' ')}. Please" in shown_text(paragraph)


def test_the_case_facts_are_shown_as_they_are():
    text = shown_text(rendered(form_description(VIEW, None, policy(), NOW)))
    assert "Booking number: B_2026_0100 (facility RCJ)" in text and "I205-2026-11873" in text
    assert "2026-03-13T11:50:00Z" in text and "The last report was refused" not in text


def test_the_form_says_when_the_window_closes_in_jail_time_and_how_long_is_left():
    text = shown_text(rendered(form_description(VIEW, None, policy(), NOW)))
    # T0 11:50Z + the 1-h grace = 12:50Z = 08:50:00 EDT; the form was shown at 12:00Z.
    assert "Serve and submit by: 2026-03-11 08:50:00 EDT (50m left when this form was shown, at 2026-03-11 08:00:00 EDT)" in text
    assert "leave it empty for the moment you press Submit" in text and "America/New_York" in text
    late = shown_text(rendered(form_description(VIEW, None, policy(), utc(2026, 3, 11, 13))))
    assert "(the window has closed)" in late


def test_the_runs_log_says_what_it_waits_for_and_until_when_in_jail_time():
    pol = policy()
    assert waiting_until({**VIEW, "status": "release_authorized"}, pol) == (
        "the WSO's service of the warrant until 2026-03-11 08:50:00 EDT (after that no hold may be made)")
    held = {**VIEW, "status": "held", "release_order_at": "2026-03-13T10:50:00Z"}
    assert waiting_until(held, pol) == "ICE pickup, or the release order at its time; the release is ordered at 2026-03-13 06:50 EDT"
    assert waiting_until({**VIEW, "status": "release_ordered"}, pol) == (
        "the release desk's confirmation that the person has left, by the deadline 2026-03-13 07:50 EDT")
    assert waiting_until({**VIEW, "status": "awaiting_release"}, pol) == "the release authorisation from the jail"


REPORT = {"officer_badge": " W-1 ", "warrant_number": "W-77 ", "served_inside_facility": True}
SUBMITTED = utc(2026, 3, 11, 12, 0, 7)


def test_a_form_becomes_one_event_the_same_for_every_reader():
    from custody.service.officer_report import OfficerReport, report_event_id, service_event
    first = service_event("2026-00007", "B1", "RCJ", OfficerReport.model_validate(REPORT), "waits-for-wso-service-ab-0",
                          SUBMITTED, policy())
    again = service_event("2026-00007", "B1", "RCJ", OfficerReport.model_validate(dict(REPORT)), "waits-for-wso-service-ab-0",
                          SUBMITTED, policy())
    assert first == again and first["event_id"] == report_event_id("2026-00007", "waits-for-wso-service-ab-0")
    # served_at left empty: the moment Prefect stored the form.
    assert parse_event(first, NOW).occurred_at == SUBMITTED
    assert (first["officer_badge"], first["warrant_number"], first["location"]) == ("W-1", "W-77", "RCJ")


def test_a_typed_time_without_an_offset_is_jail_time_and_outside_the_jail_is_refused_by_intake():
    from custody.service.officer_report import OfficerReport, service_event
    typed = OfficerReport.model_validate({**REPORT, "served_at": "2026-03-11T07:58:00"})
    event = service_event("2026-00007", "B1", "RCJ", typed, "k", SUBMITTED, policy())
    assert parse_event(event, NOW).occurred_at == utc(2026, 3, 11, 11, 58)  # 07:58 EDT
    outside = OfficerReport.model_validate({**REPORT, "served_inside_facility": False})
    assert not policy().has_facility(service_event("2026-00007", "B1", "RCJ", outside, "k", SUBMITTED, policy())["location"])


@pytest.mark.parametrize("reason, shown", [
    ("occurred_at: is more than 5 minutes in the future", "served_at: is more than 5 minutes in the future"),
    ("location: 'OUTSIDE-THE-JAIL' is not one of this jail's facilities (RCJ)",
     "served_inside_facility: a warrant may be served only inside this jail's facility"),
    ("officer_badge: badge 'W-9' is not on the WSO roster", "officer_badge: badge 'W-9' is not on the WSO roster"),
])
def test_intakes_reasons_name_the_forms_fields(reason, shown):
    from custody.service.officer_report import form_reason
    assert form_reason(reason) == shown


def test_only_a_response_to_the_officers_form_is_read_as_a_report():
    from custody.service.officer_report import response_key, wait_key_of
    key = "waits-for-wso-service-0123456789abcdef-2"
    assert wait_key_of(response_key(key)) == key
    assert wait_key_of(f"suspended-{key}-description") is None
    assert wait_key_of("suspended-waits-for-release-0123456789abcdef-0-response") is None
