"""The officer's form (flows/case.py): its Markdown shows a refusal as the
characters it holds, whatever the officer typed into the refused report."""
from __future__ import annotations

import html
import re

import markdown_it
import pytest

from flows.case import form_description
from models.events import EventRejected, parse_event
from tests.builders import policy, service_event, utc

NOW = utc(2026, 3, 11, 12)
VIEW = {"case_id": "2026-00007", "booking_number": "B_2026_0100", "facility": "RCJ", "warrant_form": "I-205",
        "warrant_number": "I205-2026-11873", "t0": "2026-03-11T11:50:00Z", "deadline_at": "2026-03-13T11:50:00Z"}
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
    markup = rendered(form_description(VIEW, refusal, policy()))
    # Everything after the form's own facts is one paragraph, whose only markup is the form's own emphasis.
    tail = markup.split("immigration status.</p>", 1)[1]
    [paragraph] = re.findall(r"<p>(.*?)</p>", tail, re.S)
    assert tail.strip() == f"<p>{paragraph}</p>" and re.findall(r"<(\w+)", paragraph) == ["strong"], tail
    # The characters of the refusal, a line break shown as a space.
    assert f"The last report was refused: {refusal.replace(chr(10), ' ')}. Please" in shown_text(paragraph)


def test_the_case_facts_are_shown_as_they_are():
    text = shown_text(rendered(form_description(VIEW, None, policy())))
    assert "Booking number: B_2026_0100 (facility RCJ)" in text and "I205-2026-11873" in text
    assert "2026-03-13T11:50:00Z" in text and "refused" not in text
