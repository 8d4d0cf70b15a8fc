"""Where custody's own packages come from.

The project's layout puts the domain, the Prefect tasks, the flows and the
deployment lists in top-level packages (`models`, `tasks`, `flows`,
`deployments`), and the wheel installs them under those names. Generic names
can clash with another distribution in the same environment, so custody is
installed into an environment of its own (README, "Install on a server"), and
`custody up` checks before it starts that each of these packages is the one
installed beside `custody`: rules loaded from someone else's `models` would
decide releases."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from pathlib import Path

TOP_LEVEL = ("models", "tasks", "flows", "deployments")
# A module each of our packages has, that a same-named package elsewhere is unlikely to.
MARKER = {"models": "models.rules", "tasks": "tasks.case_tasks", "flows": "flows.case", "deployments": "deployments.serve"}


def foreign_packages() -> list[str]:
    """Each top-level package that does not resolve to the installation beside
    `custody`, said with where it was found (empty: all are ours). Cheap: it
    reads no distribution metadata."""
    import custody

    home = Path(custody.__file__).resolve().parent.parent
    found = []
    for name in TOP_LEVEL:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            found.append(f"{name}: not importable ({error})")
            continue
        where = Path(getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), "?")).resolve()
        if where.parent != home / name and where != home / name:
            found.append(f"{name}: found at {where}, not beside custody in {home}")
        elif importlib.util.find_spec(MARKER[name]) is None:
            found.append(f"{name}: at {where}, but without {MARKER[name]}")
    return found


def shared_with_other_distributions() -> dict[str, list[str]]:
    """Top-level names that another installed distribution also provides (its
    files would overwrite ours or be mixed into them). Reads every
    distribution's file list: about a second, so it is asked after the backstop runs."""
    claimed = importlib.metadata.packages_distributions()
    return {name: sorted(set(claimed[name]) - {"custody"}) for name in TOP_LEVEL
            if set(claimed.get(name, ())) - {"custody"}}
