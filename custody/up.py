"""`custody up`: everything on one machine, supervised by one process.

- the Prefect server with its UI, and the served deployments (case runs, hold
  steps, the backstop and reconciler on an interval), restarted if they die;
- the HTTP event endpoint;
- the database backstop, in this process: it needs nothing but the database,
  so a release is ordered on time even while Prefect is down;
- the bridge that creates and wakes case runs after each commit, and catches
  Prefect up with the database when it returns;
- the reader of the officers' forms, which records a service submitted in the
  Prefect UI within a second, whatever the run's process does."""
from __future__ import annotations

import logging
import os
import signal
import sys
from typing import TextIO

from custody.config import Settings, load_senders, write_default_senders
from custody.installation import shared_with_other_distributions
from custody.loops import Backstop, RelayLoop
from custody.startup import refusals
from custody.wiring import build_core, intake_core
from models.durations import format_duration


def run_up(settings: Settings, *, host: str | None, port: int | None, out: TextIO, with_prefect: bool = True,
           demo: bool = False, read_forms: bool | None = None) -> int:
    """`read_forms`: run the reader of the officers' forms (default: with Prefect)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    host = host or settings.http_host
    port = port or settings.http_port
    refused = refusals(settings, host, port, with_prefect)
    if refused:
        out.write("custody up: refused to start:\n" + "".join(f"  {line}\n" for line in refused))
        return 2
    listeners: list = []
    core = build_core(settings, on_commit=lambda case_id, what: [listen(case_id, what) for listen in listeners])
    if not settings.senders_path.exists():
        write_default_senders(settings.senders_path)
        out.write(f"created sender tokens in {settings.senders_path} (give each sending system its own)\n")
    senders = load_senders(settings.senders_path)

    backstop = Backstop(core)
    listeners.append(backstop.poke)
    backstop.start()
    for name, others in shared_with_other_distributions().items():
        out.write(f"WARNING: the package {name} is also installed by {', '.join(others)}; their files may be mixed "
                  "with custody's. Install custody into an environment of its own.\n")
    # The web stack is loaded only now: after an outage, the releases that fell
    # due while we were down are being ordered already.
    import uvicorn

    from custody.http import create_app
    from custody.supervisor import Child, Supervisor

    relay_loop = None
    if settings.apprise_config.is_file():
        from custody.adapters.apprise_relay import Recipients, Relay
        relay_loop = RelayLoop(Relay(core, Recipients(settings.apprise_config), name="relay-custody-up"))
        listeners.append(relay_loop.poke)
        relay_loop.start()
        notifications = f"sending through Apprise ({settings.apprise_config})"
    else:
        notifications = f"NOT configured: rows wait in the outbox until {settings.apprise_config} exists (see examples/apprise.yml)"

    supervisor = bridge = reports = None
    ui = "not started (--no-prefect)"
    if with_prefect or read_forms:
        # Prefect runs its plugins' start-up hooks when first imported; imported
        # first by two threads at once, that import deadlocks on its module lock.
        import prefect  # noqa: F401
    if with_prefect:
        from custody.adapters.prefect.bridge import PrefectBridge

        env = {**os.environ, **settings.prefect_env()}
        logs = settings.home / "logs"
        server = Child("prefect-server", [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                          "--port", str(settings.prefect_port)], env, logs / "prefect-server.log",
                       health_url=f"{settings.prefect_api_url}/health")
        served = Child("prefect-serve", [sys.executable, "-m", "deployments.serve"], env, logs / "prefect-serve.log",
                       requires=server)
        out.write("starting the Prefect server...\n")
        out.flush()
        server.start()
        if not server.wait_healthy(120):
            out.write(f"the Prefect server did not become healthy; see {server.log_path}. "
                      "The endpoint and the backstop run anyway; Prefect is retried.\n")
        served.start()
        supervisor = Supervisor([server, served])
        supervisor.start()
        bridge = PrefectBridge(core)
        listeners.append(bridge.notify)
        bridge.start()
        ui = settings.prefect_api_url.removesuffix("/api")
    if with_prefect if read_forms is None else read_forms:
        from custody.adapters.prefect.form_reader import OfficerReports
        reports = OfficerReports(core, on_read=backstop.poke)
        listeners.append(reports.poke)
        reports.start()
    feeder = None
    if demo:
        from custody.demo import DemoFeeder, prefect_waiter
        # CUSTODY_DEMO_SPEED=10 plays the script ten times faster (the tests use it).
        feeder = DemoFeeder(core, wait_for_prefect=prefect_waiter() if with_prefect else (lambda: True),
                            speed=float(os.environ.get("CUSTODY_DEMO_SPEED", "1")))
        feeder.start()
        out.write("demo: resumed as it was left (custody up --demo --reset starts it clean); the simulated jail goes on\n"
                  if feeder.resumed else
                  "demo: a simulated jail starts feeding events once Prefect is up; DEMO-001 waits for your form "
                  "(10 minutes to serve)\n")
        out.write(f"  the demo's cases from the command line: custody --demo cases, custody --demo case show DEMO-001\n")

    intake = intake_core(core, settings)
    server_http = uvicorn.Server(uvicorn.Config(create_app(intake, senders), host=host, port=port, log_level="info",
                                                access_log=False, lifespan="off"))
    out.write(
        f"custody up: policy {core.policy.name} ({core.policy.mode}, limit {format_duration(core.policy.hold_limit)}, {core.policy.timezone.key})\n"
        f"  Prefect UI      {ui}\n"
        f"  event endpoint  http://{host}:{port}/events  (bearer tokens: {settings.senders_path})\n"
        f"  database        {core.engine.url.render_as_string(hide_password=True)}\n"
        f"  backstop        running here: wakes at each due instant, at least every minute\n"
        + (f"  officers' forms read here within a second of Submit in the Prefect UI\n" if reports is not None else "") +
        f"  notifications   {notifications}\n"
        f"Ctrl-C stops everything.\n")
    out.flush()
    # uvicorn stops on SIGINT/SIGTERM, then re-raises the signal once it has
    # shut down; both end here as KeyboardInterrupt so the cleanup below runs.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server_http.run()
    except KeyboardInterrupt:
        pass
    finally:
        for part in (feeder, relay_loop, reports, bridge, backstop):
            if part is not None:
                part.stop()
        if supervisor is not None:
            supervisor.stop()
        backstop.join(timeout=10)
        core.engine.dispose()
        intake.engine.dispose()
    out.write("custody stopped\n")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
