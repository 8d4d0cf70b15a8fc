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
from pydantic import ValidationError

from custody.adapters.prefect.artifacts import literal
from custody.adapters.prefect.runs import cancel_scheduled_for_case, schedule_hold_step
from custody.service.core import Core
from custody.service.officer_report import FORM_WAIT, OfficerReport
from custody.service.views import format_local
from custody.wiring import core_for_run
from models.durations import format_duration
from models.policy import Policy
from models.rules import service_due_by
from tasks.artifacts import publish_timeline
from tasks.case_tasks import mark_synced, read_case, record_officer_report

TERMINAL = {"transferred", "released", "closed"}
MAX_WAKES_PER_EXECUTION = 50
# The wait's key names what the run waits for (Prefect keys: lowercase, digits, dashes).
WAIT_KEY = {
    "awaiting_release": "waits-for-release",
    "release_authorized": FORM_WAIT,
    "held": "waits-for-pickup-or-release-order",
    "release_ordered": "waits-for-release-confirmation",
}
WAITING_FOR = {
    "awaiting_release": "the release authorisation from the jail",
    "release_authorized": "the WSO's service of the warrant",
    "held": "ICE pickup, or the release order at its time",
    "release_ordered": "the release desk's confirmation that the person has left",
}


class WarrantServiceForm(RunInput, OfficerReport):
    """The officer's report (custody/service/officer_report.py) as the run's input form."""


def form_description(view: dict[str, Any], refusal: str | None, policy: Policy, now: datetime) -> str:
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
    ]
    closes = window_closes(view, policy)
    if closes is not None:
        left = closes - now
        lines.append(f"* **Serve and submit by:** {md(local_seconds(closes, policy))} "
                     + (f"({md(format_duration(left))} left when this form was shown, at {md(local_seconds(now, policy))})"
                        if left.total_seconds() > 0 else "(the window has closed)")
                     + "; a service after that authorises no hold")
    lines += [
        f"* **Served at:** leave it empty for the moment you press Submit; a time you type is jail time "
        f"({md(policy.timezone.key)}) unless you give an offset",
        "* **After Submit:** within seconds this run's Logs say whether your service was recorded (held until the "
        "deadline) or refused and why; a refused report asks again here",
        "",
        "Serve only inside the jail. Do not ask about birthplace, citizenship or immigration status.",
    ]
    if refusal:
        lines += ["", f"**The last report was refused:** {md(refusal)}. Please correct it and submit again."]
    return "\n".join(lines)


def window_closes(view: dict[str, Any], policy: Policy) -> datetime | None:
    """Rule 6: the end of the service window, T0 + the grace."""
    if not view.get("release_authorized_at"):
        return None
    return service_due_by(datetime.fromisoformat(view["release_authorized_at"]), policy)


def waiting_until(view: dict[str, Any], policy: Policy) -> str:
    """What the run waits for and until when, in the jail's time, as its log says it."""
    status = view["status"]
    what = WAITING_FOR.get(status, "a change")
    if status == "release_authorized" and (closes := window_closes(view, policy)) is not None:
        return f"{what} until {local_seconds(closes, policy)} (after that no hold may be made)"
    if status == "held" and view.get("release_order_at"):
        return f"{what}; the release is ordered at {format_local(view['release_order_at'], policy)}"
    if status == "release_ordered" and view.get("deadline_at"):
        return f"{what}, by the deadline {format_local(view['deadline_at'], policy)}"
    return what


def local_seconds(instant: datetime, policy: Policy) -> str:
    return policy.local(instant).strftime("%Y-%m-%d %H:%M:%S %Z")


@flow(name="custody-case", flow_run_name="case-{case_id}", persist_result=False)
def case_flow(case_id: str) -> str:
    with core_for_run() as core:
        return follow_case(core, case_id)


def follow_case(core: Core, case_id: str) -> str:
    """From the top to the wait the case's status calls for (or to its end)."""
    logger = get_run_logger()
    policy = core.policy
    attempt = 0
    refusal: str | None = None
    while True:
        view = read_case(core, case_id)
        publish_timeline(core, case_id)
        status = view["status"]
        if status not in TERMINAL:
            mark_synced(core, case_id, view["version"], view["mirror_digest"])
        else:
            # An ending run does not mark itself in step: killed after that and before
            # its return, it would stay Crashed for good (seen in the 30-minute soak).
            # The sync marks it once it reads the run Completed, or ends a crashed
            # one itself (tasks/sync.py).
            cancelled = cancel_scheduled_for_case(case_id)
            logger.info("case %s ended %s (%s); %d scheduled step(s) cancelled", case_id, status, view["status_reason"], cancelled)
            return f"{status}: {view['status_reason'] or ''}".strip()
        for step, at in view["hold_steps"]:
            schedule_hold_step(case_id, step, datetime.fromisoformat(at), view["facility"], view["booking_number"])

        # The wait is named by what the run mirrors, not by the case's version: the
        # sync lets the version move on without waking the run (tasks/sync.py),
        # and a resume with the officer's form must find the very wait it answers.
        key = f"{WAIT_KEY.get(status, 'waits')}-{view['mirror_digest'][:16]}-{attempt}"
        attempt += 1
        if attempt > MAX_WAKES_PER_EXECUTION:
            raise RuntimeError(f"case {case_id}: woken {attempt} times without a change; giving the run to the reconciler")
        if status == "release_authorized" and view["mode"] == "wso":
            logger.info("case %s: waiting for %s", case_id, waiting_until(view, policy))
            description = form_description(view, refusal, policy, core.clock.now())
            try:
                suspend_flow_run(wait_for_input=WarrantServiceForm.with_initial_data(description=description),
                                 key=key, timeout=None)
            except ValidationError:
                pass  # a stored form that is not a report: judged below, as the reader in custody up judges it
            except RuntimeError:
                if ended_meanwhile(core, case_id):
                    continue
                raise
            # Usually the reader in `custody up` recorded the form within a second of
            # Submit; this finds its decision (or makes it, if that reader is not running).
            result = record_officer_report(core, case_id, key)
            if result is None:  # this wait was woken without a form (the case moved on): re-read
                logger.info("case %s: wait %s ended without a form", case_id, key)
                continue
            if result["result"] == "rejected":
                refusal = result["reason"]
                logger.warning("case %s: the officer's report was refused: %s", case_id, refusal)
            continue
        logger.info("case %s is %s: waiting for %s", case_id, status, waiting_until(view, policy))
        try:
            suspend_flow_run(key=key, timeout=None)
        except RuntimeError:
            if ended_meanwhile(core, case_id):
                continue
            raise


def ended_meanwhile(core: Core, case_id: str) -> bool:
    """The server refused to suspend this run. The sync ends the run of an ended
    case itself (tasks/sync.py), and a Completed run cannot pause: if the case
    ended after this run read it, the run re-reads and ends with the case."""
    return read_case(core, case_id)["status"] in TERMINAL
