"""A WSO at the Prefect UI, for the soak: waits for the case run to ask for the
officer's form, then submits it at the planned moment (a third of them in the
last 15 seconds of the window) with the very request the Prefect UI's Resume
dialog sends: POST /api/flow_runs/ID/resume {"run_input": {...}}."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from sqlalchemy import select

from custody.store import schema as t

BADGE = "W-1031"


@dataclass
class FormReport:
    booking: str
    planned: float       # epoch second the WSO means to press Submit
    closes: float        # epoch second the service window closes (T0 + grace, by the events' own times)
    case_id: str | None = None
    submitted: float | None = None  # when Submit was pressed
    answered: float | None = None   # when Prefect answered that it stored the form (ACCEPT)
    shown: float | None = None      # when the run first asked for the form
    attempts: int = 0
    last_answer: str = ""

    @property
    def timely(self) -> bool:
        """Prefect stored it before the window closed."""
        return self.answered is not None and self.answered < self.closes

    @property
    def last_15s(self) -> bool:
        return self.closes - self.planned <= 15


def _call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (OSError, ValueError):
        return 0, {}  # the server is down (a fault of the soak) or did not answer: try again


class FormWso(threading.Thread):
    def __init__(self, api: str, engine, report: FormReport, warrant: str, reports: list[FormReport], lock: threading.Lock):
        super().__init__(name=f"wso-{report.booking}", daemon=True)
        self.api, self.engine, self.report, self.warrant = api, engine, report, warrant
        self.reports, self.lock = reports, lock

    def run(self) -> None:
        r = self.report
        try:
            while time.time() < r.closes:
                run_id = self._run_asking_for_the_form()
                if run_id is not None and r.shown is None:
                    r.shown = time.time()
                if run_id is not None and time.time() >= r.planned:
                    r.attempts += 1
                    r.submitted = time.time()
                    status, answer = _call("POST", f"{self.api}/flow_runs/{run_id}/resume", {"run_input": {
                        "officer_badge": BADGE, "warrant_number": self.warrant, "served_inside_facility": True}})
                    r.last_answer = f"{status} {answer.get('status', '')}".strip()
                    if answer.get("status") == "ACCEPT":
                        r.answered = time.time()
                        return
                time.sleep(min(0.2, max(0.0, r.planned - time.time())) or 0.2)
        finally:
            with self.lock:
                self.reports.append(r)

    def _run_asking_for_the_form(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.cases.c.case_id, t.case_runs.c.flow_run_id)
                               .select_from(t.cases.join(t.case_runs, t.case_runs.c.case_id == t.cases.c.case_id))
                               .where(t.cases.c.booking_number == self.report.booking)).first()
        if row is None or row[1] is None:
            return None
        self.report.case_id = row[0]
        status, run = _call("GET", f"{self.api}/flow_runs/{row[1]}")
        state = run.get("state") or {}
        keyset = (state.get("state_details") or {}).get("run_input_keyset")
        if state.get("type") != "PAUSED" or not keyset:
            return None
        # The run is Suspended before it stores the form's schema and description: until
        # then the server refuses a resume ("schema not found"), and the UI shows no form.
        status, _ = _call("GET", f"{self.api}/flow_runs/{row[1]}/input/{keyset['description']}")
        return row[1] if status == 200 else None
