"""Operations alerts: the machinery itself in trouble, told to supervisors and the sheriff."""
from __future__ import annotations

from custody.service.core import Core
from models.domain import Transition


def raise_operations_alert(core: Core, *, what: str, subject: str, detail: str, dedupe: str) -> int:
    """Tell supervisors and the sheriff that the machinery itself is in trouble
    (a backstop or deadline run failed, crashed, ran late or went silent).
    `dedupe` makes the same incident one notification however often it is raised."""
    now = core.clock.now()
    body = (f"{detail}\nThe database backstop in `custody up` keeps ordering releases on time; "
            f"check the Prefect UI and the custody logs.")
    with core.uow() as uow:
        added = uow.outbox.add_alert(key=f"ops:{dedupe}", kind=f"ops-{what}", groups=("supervisors", "sheriff"),
                                     urgency="urgent", subject=f"URGENT custody: {subject}"[:300], body=body, now=now)
        uow.audit.add(case_id=None, at=now, actor="automation", source_event_id=None,
                      transition=Transition("operations_alert", None, None, f"{subject}: {detail}"))
        uow.commit()
    return added
