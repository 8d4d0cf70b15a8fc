"""The officer's report counts the moment it is submitted.

A WSO reports the service through the form of the case's run in the Prefect
UI; Prefect stores the form and reschedules the run, whose new process may
start seconds later on a busy machine. A legal fact must not wait for that:
this reader, in `custody up`, finds the stored form within a second and records
it through intake (custody/service/officer_report.py), exactly as the run would, which
then finds it recorded. It tells the officer the outcome on the run's page
(its logs and timeline) at once.

Each pass reads every form Prefect had stored a moment (MARGIN) before the
pass began, and says so in the database (`report_reads`): rule 6's window ends without a service only
once every form submitted before it closed has been read, or `report_wait`
after it closed if Prefect cannot be read (docs/rules.md). So a timely report
is never lost to our lag, and with Prefect down, where nobody can submit, the
backstop still decides alone."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable
from uuid import UUID

from custody.loops import PassLoop
from custody.service.core import Core
from custody.service.intake import IngestResult
from custody.service.officer_report import FORM_WAIT, record_report, wait_key_of
from models.durations import format_duration
from models.rules import NEVER_READ, service_due_by

log = logging.getLogger("custody.adapters.prefect.form_reader")

SOURCE = "prefect-ui"  # the reader's row in report_reads
POLL = timedelta(milliseconds=250)  # while some case's run may ask for the form
RETRY = timedelta(seconds=1)  # after a pass that could not read Prefect or write
# A pass claims the forms stored this long before it began: a form's transaction may
# commit after its timestamp, and Prefect's clock and the flow-run processes' may
# differ a little from ours (another machine).
MARGIN = timedelta(seconds=2)
PAGE = 200  # runs per request (Prefect's default limit) and inputs per request


class OfficerReports(PassLoop):
    """Reads the officers' forms from the Prefect API into the database."""

    def __init__(self, core: Core, on_read: Callable[[], None] | None = None, poll: timedelta = POLL,
                 idle: timedelta = timedelta(seconds=5), connect: Callable[[], Any] | None = None):
        super().__init__("custody-officer-reports", idle)
        self.core = core
        self.poll = poll
        self.on_read = on_read  # after the read passed a window's close: the backstop may decide it now
        self._seen: dict[str, set[str]] = {}  # per run: the input keys already handled
        self._written: datetime | None = None  # the read_through last stored
        self._claimed: datetime | None = None  # the read_through of the last pass that read (None: none yet)
        self._failing: str | None = None  # why the last pass failed (stored, and said once)
        self._connect = connect or _prefect_client  # a context manager: the Prefect API's client
        self._client: Any = None

    def one_pass(self) -> timedelta | None:
        started = self.core.clock.now()
        through = started - MARGIN  # every form Prefect had stored by then is read below
        with self.core.uow(read_only=True) as uow:
            waiting = uow.runs.awaiting_service()
        if not waiting:
            self._seen.clear()
            return None  # the commit that makes a case wait for its officer pokes this loop
        try:
            self._read({row["flow_run_id"]: row["case_id"] for row in waiting}, self._claimed)
        except Exception as exc:  # Prefect down or busy, or the database: nothing is lost, the form waits in Prefect
            self._failed(started, exc)
            return RETRY
        self._claimed = through
        closes = [service_due_by(row["release_authorized_at"], self.core.policy) for row in waiting]
        passed = [at for at in closes if at <= through and (self._written is None or at > self._written)]
        if passed or self._failing is not None:
            with self.core.uow() as uow:
                uow.form_reads.record(SOURCE, through, self.core.clock.now())
                uow.commit()
            self._written, self._failing = through, None
            if passed and self.on_read is not None:
                self.on_read()
        upcoming = [at + MARGIN for at in closes if at > through]
        if not upcoming:
            return self.poll
        # Read again the moment a window's close can be claimed, so that its decision waits no longer.
        return max(min(self.poll, min(upcoming) - self.core.clock.now()), timedelta(0))

    def _read(self, runs: dict[str, str], since: datetime | None) -> None:
        """Record every unread form of these runs. Submit moves a run out of
        Paused in the transaction that stores its form (Prefect's resume), and
        a run that took a form and paused again did so after it: so the runs to
        read are those not Paused, and those paused since `since` (the previous
        pass's claim); all of them on the first pass."""
        client = self._api()
        for run_id in self._runs_to_read(client, list(runs), since):
            seen = self._seen.setdefault(run_id, set())
            while True:
                page = client.filter_flow_run_input(UUID(run_id), key_prefix=f"suspended-{FORM_WAIT}-", limit=PAGE,
                                                    exclude_keys=seen)
                for found in page:
                    wait_key = wait_key_of(found.key)
                    if wait_key is not None:
                        result = record_report(self.core, runs[run_id], wait_key, found.decoded_value, found.created)
                        if result.result != "duplicate":  # the run itself was first: it has said so
                            self._tell(client, run_id, runs[run_id], result, found.created)
                    seen.add(found.key)
                if len(page) < PAGE:
                    break
        for run_id in set(self._seen) - set(runs):
            del self._seen[run_id]

    @staticmethod
    def _runs_to_read(client: Any, run_ids: list[str], since: datetime | None) -> list[str]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
        from prefect.client.schemas.objects import StateType

        if since is None:
            return run_ids
        chosen: list[str] = []
        for first in range(0, len(run_ids), PAGE):
            ids = [UUID(run_id) for run_id in run_ids[first:first + PAGE]]
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=PAGE):
                state = run.state
                if state is None or state.type is not StateType.PAUSED or state.timestamp >= since:
                    chosen.append(str(run.id))
        return chosen

    def _tell(self, client: Any, run_id: str, case_id: str, result: IngestResult, submitted_at: datetime) -> None:
        """The outcome on the run's page, where the officer pressed Submit."""
        from prefect.client.schemas.actions import LogCreate

        from custody.adapters.prefect.artifacts import publish_timeline_for_run

        with self.core.uow(read_only=True) as uow:
            case = uow.cases.get(case_id)
        message, level = outcome_message(case, result, submitted_at, self.core.policy)
        log.info("case %s: %s", case_id, message)
        try:
            client.create_logs([LogCreate(name="custody.officer-report", level=level, message=message,
                                          timestamp=self.core.clock.now(), flow_run_id=UUID(run_id))])
            publish_timeline_for_run(self.core, case_id, run_id)
        except Exception as exc:  # the fact is recorded; only the page lags
            log.warning("case %s: could not show the report's outcome on its run: %s", case_id, exc)

    def _failed(self, at: datetime, exc: Exception) -> None:
        why = f"{type(exc).__name__}: {exc}"[:500]
        if self._failing is None:
            log.warning("officers' reports in the Prefect UI cannot be read (%s); the backstop decides service "
                        "windows without them %s after they close", why, format_duration(self.core.policy.report_wait))
        if why != self._failing:
            try:
                with self.core.uow() as uow:
                    uow.form_reads.record(SOURCE, self._written or NEVER_READ, at, error=why)
                    uow.commit()
            except Exception:
                log.exception("recording that the officers' reports cannot be read failed")
        self._failing = why
        self._close_client()

    def _api(self):
        if self._client is None:
            client = self._connect()
            client.__enter__()
            self._client = client
        return self._client

    def _close_client(self) -> None:
        if self._client is not None:
            try:
                self._client.__exit__(None, None, None)
            finally:
                self._client = None


def _prefect_client():
    from prefect.client.orchestration import get_client
    return get_client(sync_client=True)


def _local(instant: datetime | None, policy) -> str:
    return "-" if instant is None else policy.local(instant).strftime("%Y-%m-%d %H:%M:%S %Z")


def outcome_message(case, result: IngestResult, submitted_at: datetime, policy) -> tuple[str, int]:
    """What the officer reads after Submit: recorded and held until when, or why not."""
    when = _local(submitted_at, policy)
    if result.result == "rejected":
        return (f"REFUSED: the report submitted at {when} does not count: {result.reason}. "
                "The form asks again: press Resume to correct it.", logging.WARNING)
    if case is not None and case.hold_authorized and case.served_by and case.service_event_id == result.event_id:
        return (f"RECORDED: the service by badge {case.served_by} at {_local(case.served_at, policy)} counts. "
                f"The person is HELD on the served warrant until the deadline, {_local(case.deadline_at, policy)} "
                f"(release ordered by {_local(case.release_order_at, policy)}).", logging.INFO)
    status = case.status_reason if case is not None else "the case is not in the database"
    return f"RECORDED, but it authorises no hold: {result.outcome or ''}; the case is {case.status if case else '-'}: {status}.", \
        logging.WARNING
