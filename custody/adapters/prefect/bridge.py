"""After a commit, tell Prefect: create the case's run or wake it. Runs in a
background thread so intake never waits on Prefect, and never loses anything
when Prefect is down: the database says which runs lag, and the reconciler
(or this bridge's own periodic pass) catches them up when Prefect returns."""
from __future__ import annotations

import logging
import queue
import threading

from custody.service.core import Core

log = logging.getLogger("custody.adapters.prefect.bridge")


class PrefectBridge(threading.Thread):
    def __init__(self, core: Core, catch_up_every: float = 30.0):
        super().__init__(name="custody-prefect-bridge", daemon=True)
        self.core = core
        self.catch_up_every = catch_up_every
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()

    def notify(self, case_id: str, _what: str = "") -> None:
        self._queue.put(case_id)

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)

    def run(self) -> None:
        from custody.adapters.prefect.sync import reconcile, sync_case, tell_case_steps

        while not self._stopping.is_set():
            try:
                case_id = self._queue.get(timeout=self.catch_up_every)
            except queue.Empty:
                case_id = ""
            if self._stopping.is_set():
                return
            try:
                if case_id:
                    sync_case(self.core, case_id)
                    tell_case_steps(self.core)  # after the sync: a new case's events name its run
                else:
                    reconcile(self.core)
            except Exception:
                log.exception("bringing Prefect up to date failed; will retry")
