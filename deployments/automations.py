"""Automations that alert people when the legal machinery misbehaves: a
backstop or hold-step (deadline) run that fails, crashes or runs late. A
backstop that has gone silent (its serve process dead) shows as Late runs, so
the same automation covers it. It runs the `custody-alert` deployment, which
notifies through the project's outbox.

(A proactive "no backstop completed within 3 minutes" trigger was tried and
fired although backstop runs completed every minute; a false page to the
sheriff is worse than none, so it is not used.)"""
from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture

WATCHED_FLOWS = ["custody-backstop", "custody-hold-step"]
PARAMETERS = {
    "what": "{{ event.event | replace('prefect.flow-run.', '') | lower }}",
    "flow_run_name": "{{ event.resource.name }}",
    "flow_name": "{{ flow.name }}",
    "event_id": "{{ event.id | string }}",
}


def wanted(alert_deployment_id: UUID) -> list[Automation]:
    action = RunDeployment(source="selected", deployment_id=alert_deployment_id, parameters=PARAMETERS)
    return [
        Automation(
            name="custody: deadline or backstop run failed, crashed or late",
            description="A run that orders releases did not run as it should.",
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.Late"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={"prefect.resource.role": "flow", "prefect.resource.name": WATCHED_FLOWS},
                posture=Posture.Reactive, threshold=1, within=timedelta(0)),
            actions=[action]),
    ]


RETIRED = ["custody: backstop silent"]


def ensure_automations(alert_deployment_id: UUID) -> list[str]:
    """Idempotent: an automation of the same name is replaced, so a changed
    definition takes effect at the next start."""
    names = []
    with get_client(sync_client=True) as client:
        for name in RETIRED:
            for old in client.read_automations_by_name(name):
                client.delete_automation(old.id)
        for automation in wanted(alert_deployment_id):
            for old in client.read_automations_by_name(automation.name):
                client.delete_automation(old.id)
            automation.create()
            names.append(automation.name)
    return names
