"""What every use case is handed: the database, the policy and the clock (built
once, by the composition root in custody/wiring.py), and who sent an event."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy.engine import Engine

from custody.store.unit_of_work import SqlUnitOfWork
from models.clock import Clock
from models.policy import Policy

RETRIES = 8  # attempts of one transaction that lost a race to another writer


@dataclass(frozen=True)
class Core:
    """What every handler needs: the database, the policy, and the clock."""
    engine: Engine
    policy: Policy
    clock: Clock
    on_commit: Callable[[str, str], None] | None = None  # (case_id, what) after a commit, e.g. wake the backstop

    def uow(self, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only)


@dataclass(frozen=True)
class Sender:
    name: str
    event_types: frozenset[str] | None = None  # None: may send every type (local operators)
