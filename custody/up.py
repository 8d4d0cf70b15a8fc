"""`custody up`: everything on one machine, in one supervised process.

Now: the HTTP event endpoint and the database backstop. The backstop runs here
regardless of Prefect, so a release is ordered on time whatever else is down."""
from __future__ import annotations

import logging
import signal
from typing import TextIO

import uvicorn

from custody.backstop import Backstop
from custody.config import Settings, load_senders, write_default_senders
from custody.http import create_app
from custody.wiring import build_core
from models.durations import format_duration


def run_up(settings: Settings, *, host: str | None, port: int | None, out: TextIO) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = host or settings.http_host
    port = port or settings.http_port
    backstop_holder: list[Backstop] = []
    core = build_core(settings, on_commit=lambda case_id, what: backstop_holder and backstop_holder[0].poke())
    if not settings.senders_path.exists():
        write_default_senders(settings.senders_path)
        out.write(f"created sender tokens in {settings.senders_path} (give each sending system its own)\n")
    senders = load_senders(settings.senders_path)

    backstop = Backstop(core)
    backstop_holder.append(backstop)
    backstop.start()

    server = uvicorn.Server(uvicorn.Config(create_app(core, senders), host=host, port=port, log_level="info",
                                           access_log=False, lifespan="off"))
    out.write(
        f"custody up: policy {core.policy.name} ({core.policy.mode}, limit {format_duration(core.policy.hold_limit)}, {core.policy.timezone.key})\n"
        f"  database        {core.engine.url.render_as_string(hide_password=True)}\n"
        f"  event endpoint  http://{host}:{port}/events  (bearer tokens: {settings.senders_path})\n"
        f"  backstop        running: wakes at each due instant, at least every minute\n"
        f"Ctrl-C stops everything.\n")
    out.flush()
    # uvicorn stops on SIGINT/SIGTERM, then re-raises the signal once it has
    # shut down; both end here as KeyboardInterrupt so the cleanup below runs.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        backstop.stop()
        backstop.join(timeout=10)
        core.engine.dispose()
    out.write("custody stopped\n")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
