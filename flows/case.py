"""The case flow: one run per case, read top to bottom like the process.

The database is the truth; this run is its visible, driven mirror. Every time
it wakes it starts from the top (Prefect re-executes suspended flows), re-reads
the case, and goes to the wait that the case's status calls for. Nothing before
a wait has an effect that repeating could double: reads, idempotent scheduling,
and a form turned into an event with a deterministic id."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, suspend_flow_run
from prefect.input import RunInput
from pydantic import Field, ValidationError

from models.policy import Policy
from models.views import format_local
from tasks.artifacts import literal, publish_timeline
from tasks.case_tasks import mark_synced, parse_instant, read_case, record_service
from tasks.runs import cancel_scheduled_for_case, schedule_hold_step

TERMINAL = {"transferred", "released", "closed"}
MAX_WAKES_PER_EXECUTION = 50
# The wait's key names what the run waits for (Prefect keys: lowercase, digits, dashes).
WAIT_KEY = {
    "awaiting_release": "waits-for-release",
    "release_authorized": "waits-for-wso-service",
    "held": "waits-for-pickup-or-release-order",
    "release_ordered": "waits-for-release-confirmation",
}
WAITING_FOR = {
    "awaiting_release": "the release authorisation from the jail",
    "release_authorized": "the WSO's service of the warrant",
    "held": "ICE pickup, or the release order at its time",
    "release_ordered": "the release desk's confirmation that the person has left",
}


class WarrantServiceForm(RunInput):
    """What a certified WSO reports after serving the ICE warrant. Every field is
    required: an empty form cannot resume the run. There is deliberately no
    field about birthplace, citizenship or alienage: WSOs may not ask."""
    officer_badge: str = Field(min_length=1, max_length=128, description="Your WSO badge number, as on the roster")
    warrant_number: str = Field(min_length=1, max_length=128, description="The number of the I-200 or I-205 you served")
    served_at: datetime = Field(description="When you served it (jail local time unless you give an offset)")
    served_inside_facility: bool = Field(description="I served the warrant inside this jail's facility")


def form_description(view: dict[str, Any], refusal: str | None, policy: Policy) -> str:
    """The form's Markdown. Every value is shown as literal text: a refusal
    quotes what the officer typed (and intake's patterns, full of `*`, `[`, `_`),
    which the UI would otherwise render as emphasis, links, images or HTML."""
    md = literal
    lines = [
        f"## Serve the ICE warrant: case {md(view['case_id'])}",
        "",
        f"* **Booking number:** {md(view['booking_number'])} (facility {md(view['facility'])})",
        f"* **Warrant:** {md(view['warrant_form'] or '-')} {md(view['warrant_number'] or '(none on file)')}",
        f"* **T0 (release authorised):** {md(format_local(view['t0'], policy))}",
        f"* **Hold deadline:** {md(format_local(view['deadline_at'], policy))} ({md(view['deadline_at'] or '-')})",
        "",
        "Serve only inside the jail. Do not ask about birthplace, citizenship or immigration status.",
    ]
    if refusal:
        lines += ["", f"**The last report was refused:** {md(refusal)}. Please correct it and submit again."]
    return "\n".join(lines)


def service_event(view: dict[str, Any], form: WarrantServiceForm, key: str, policy: Policy) -> dict[str, Any]:
    served_at = form.served_at
    if served_at.tzinfo is None:  # the form says: jail local time unless an offset is given
        served_at = served_at.replace(tzinfo=policy.timezone)
    return {
        "event_id": f"form-{view['case_id']}-{key}", "type": "warrant.served",
        "occurred_at": served_at.isoformat(), "booking_number": view["booking_number"],
        "facility": view["facility"], "officer_badge": form.officer_badge.strip(),
        "warrant_number": form.warrant_number.strip(), "location": view["facility"],
    }


@flow(name="custody-case", flow_run_name="case-{case_id}", persist_result=False)
def case_flow(case_id: str) -> str:
    from tasks.context import core

    logger = get_run_logger()
    policy = core().policy
    attempt = 0
    refusal: str | None = None
    while True:
        view = read_case(case_id)
        publish_timeline(case_id)
        status = view["status"]
        if status not in TERMINAL:
            mark_synced(case_id, view["version"], view["mirror_digest"])
        else:
            # An ending run does not mark itself in step: killed after that and before
            # its return, it would stay Crashed for good (seen in the 30-minute soak).
            # The sync marks it once it reads the run Completed, or ends a crashed
            # one itself (tasks/sync.py).
            cancelled = cancel_scheduled_for_case(case_id)
            logger.info("case %s ended %s (%s); %d scheduled step(s) cancelled", case_id, status, view["status_reason"], cancelled)
            return f"{status}: {view['status_reason'] or ''}".strip()
        for step, at in view["hold_steps"]:
            schedule_hold_step(case_id, step, parse_instant(at), view["facility"])

        # The wait is named by what the run mirrors, not by the case's version: the
        # sync lets the version move on without waking the run (tasks/sync.py),
        # and a resume with the officer's form must find the very wait it answers.
        key = f"{WAIT_KEY.get(status, 'waits')}-{view['mirror_digest'][:16]}-{attempt}"
        attempt += 1
        if attempt > MAX_WAKES_PER_EXECUTION:
            raise RuntimeError(f"case {case_id}: woken {attempt} times without a change; giving the run to the reconciler")
        if status == "release_authorized" and view["mode"] == "wso":
            logger.info("case %s: waiting for %s", case_id, WAITING_FOR[status])
            try:
                form = suspend_flow_run(
                    wait_for_input=WarrantServiceForm.with_initial_data(description=form_description(view, refusal, policy)),
                    key=key, timeout=None)
            except ValidationError as exc:
                # This wait was woken without a form (the case moved on): re-read.
                logger.warning("case %s: wait %s ended without a form (%s)", case_id, key, exc.error_count())
                continue
            except RuntimeError:
                if ended_meanwhile(case_id):
                    continue
                raise
            if not form.served_inside_facility:
                refusal = "served_inside_facility: a warrant may be served only inside this jail"
                continue
            result = record_service(case_id, service_event(view, form, key, policy))
            if result["result"] == "rejected":
                refusal = result["reason"]
                logger.warning("case %s: service refused: %s", case_id, refusal)
            continue
        logger.info("case %s is %s: waiting for %s", case_id, status, WAITING_FOR.get(status, "a change"))
        try:
            suspend_flow_run(key=key, timeout=None)
        except RuntimeError:
            if ended_meanwhile(case_id):
                continue
            raise


def ended_meanwhile(case_id: str) -> bool:
    """The server refused to suspend this run. The sync ends the run of an ended
    case itself (tasks/sync.py), and a Completed run cannot pause: if the case
    ended after this run read it, the run re-reads and ends with the case."""
    return read_case(case_id)["status"] in TERMINAL
