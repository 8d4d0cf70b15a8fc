"""One machine: serve every deployment from one process (`python -m deployments.serve`).

`custody up` starts this process and restarts it if it dies. The case and hold
step deployments have no schedule (runs are created per case); the backstop
and the reconciler run every minute, the reports monthly and yearly, the roster
watch daily (the pickup poll is the reconciler's pass:
at most one minute, never longer than the policy's interval)."""
from __future__ import annotations

from datetime import timedelta

from prefect import serve
from prefect.schedules import Cron

from flows.staff_forms import acknowledge_notice, confirm_release, record_copy_served, record_detainer, record_handover, record_lift
from flows.alert import operations_alert
from flows.backstop import backstop, reconcile_runs
from flows.case import case_flow
from flows.hold_step import hold_step
from flows.relay import relay_notifications
from flows.reports import periodic_report, roster_watch

BACKSTOP_INTERVAL = timedelta(seconds=60)


def deployments(interval: timedelta = BACKSTOP_INTERVAL):
    from custody.config import Settings
    from models.policy import load_policy

    policy = load_policy(Settings.from_env().policy_path)
    poll = min(interval, policy.pickup_poll_interval)
    zone = policy.timezone.key
    return [
        case_flow.to_deployment(name="case", tags=["custody"], description="One run per detainer case."),
        hold_step.to_deployment(name="hold-step", tags=["custody"], description="A reminder, release order or deadline of one hold."),
        backstop.to_deployment(name="backstop", interval=interval, tags=["custody", "backstop"],
                               description="Orders every due release from the database alone."),
        reconcile_runs.to_deployment(name="reconcile", interval=poll, tags=["custody"],
                                     description="Brings case runs in line with the database (and polls for pickup)."),
        relay_notifications.to_deployment(name="relay", interval=interval, tags=["custody"],
                                          description="Sends pending notifications through Apprise."),
        # The Run forms of what people report (flows/staff_forms.py): each run is one event through intake.
        record_detainer.to_deployment(name="record-detainer", tags=["custody", "form"],
                                      description="Records staff: enter a detainer that came by fax, e-mail or hand (Run form)."),
        record_copy_served.to_deployment(name="record-copy-served", tags=["custody", "form"],
                                         description="Records staff: the person was given a copy of the detainer (Run form)."),
        record_lift.to_deployment(name="record-lift", tags=["custody", "form"],
                                  description="Records staff: ICE lifted the detainer (Run form)."),
        confirm_release.to_deployment(name="confirm-release", tags=["custody", "form"],
                                      description="Release desk: the person has left the jail (Run form)."),
        record_handover.to_deployment(name="record-handover", tags=["custody", "form"],
                                      description="Release desk: ICE picked the person up, or another agency took them (Run form)."),
        acknowledge_notice.to_deployment(name="acknowledge", tags=["custody", "form"],
                                         description="Records staff: ICE acknowledged a notice (Run form)."),
        operations_alert.to_deployment(name="alert", tags=["custody"],
                                       description="Notifies supervisors and the sheriff of a failed, late or silent run."),
        # Reports at 06:00 jail time on the first of the month / year; the roster watch every morning.
        periodic_report.to_deployment(name="monthly-report", schedules=[Cron("0 6 1 * *", timezone=zone)],
                                      parameters={"kind": "monthly"}, tags=["custody", "report"],
                                      description="Last month's report: artifact, report folder, sent to the sheriff and supervisors."),
        periodic_report.to_deployment(name="annual-report", schedules=[Cron("0 6 1 1 *", timezone=zone)],
                                      parameters={"kind": "annual"}, tags=["custody", "report"],
                                      description="Last year's report (e.g. for the legislature): artifact, folder, sent to the sheriff and supervisors."),
        roster_watch.to_deployment(name="roster-watch", schedules=[Cron("0 7 * * *", timezone=zone)], tags=["custody"],
                                   description="Certifications expiring within 30 days and days without a certified WSO, to supervisors."),
    ]


def main() -> None:
    from deployments.automations import ensure_automations

    served = deployments()
    alert_id = next(d for d in served if d.name == "alert").apply()
    ensure_automations(alert_id)
    # Schedules stay active across restarts: the backstop must not wait for a human to unpause it.
    serve(*served, limit=8, print_starting_message=True, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
