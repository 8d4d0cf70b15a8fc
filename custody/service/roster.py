"""The WSO roster replaced as a whole, its history kept."""
from __future__ import annotations

import hashlib

from custody.service.core import Core
from models.domain import Transition
from models.roster import parse_roster


def load_roster(core: Core, text: str, *, source: str, actor: str) -> dict[str, list[str]]:
    entries = parse_roster(text, core.policy)  # raises RosterError naming line and field
    with core.uow() as uow:
        changes = uow.roster.replace(entries, now=core.clock.now(), actor=actor, source=source,
                                     file_sha256=hashlib.sha256(text.encode()).hexdigest())
        uow.audit.add(case_id=None, at=core.clock.now(), actor=actor, source_event_id=None, transition=Transition(
            "roster_loaded", None, None,
            f"{len(entries)} officers from {source}: " + ", ".join(f"{k} {len(v)}" for k, v in changes.items())))
        uow.commit()
    return changes
