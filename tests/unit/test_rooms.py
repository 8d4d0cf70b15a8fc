"""Each top-level folder holds what its name says: tasks/ only Prefect tasks,
flows/ flows (and the text and steps of their runs), deployments/ only lists
of deployments; every task is handed the core its run built (no cached global),
and persistence is a repository per aggregate behind one unit of work."""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from prefect import Flow, Task

from custody.store.repositories.base import Repository
from custody.store.unit_of_work import SqlUnitOfWork

ROOT = Path(__file__).resolve().parents[2]


def modules(folder: str) -> list[str]:
    return sorted(f"{folder}.{p.stem}" for p in (ROOT / folder).glob("*.py") if p.stem != "__init__")


def defined_here(module) -> dict[str, object]:
    """The module's own public functions and Prefect objects (not what it imports)."""
    found = {}
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (Task, Flow)):
            if getattr(value.fn, "__module__", None) == module.__name__:
                found[name] = value
        elif inspect.isfunction(value) and value.__module__ == module.__name__:
            found[name] = value
    return found


def test_tasks_holds_only_prefect_tasks_each_handed_its_core():
    names = modules("tasks")
    assert len(names) >= 3
    for name in names:
        module = importlib.import_module(name)
        defined = defined_here(module)
        assert defined, name
        for attr, value in defined.items():
            assert isinstance(value, Task), f"{name}.{attr} is not a Prefect task"
            first = next(iter(inspect.signature(value.fn).parameters))
            assert first == "core", f"{name}.{attr} is not handed the core (first parameter: {first})"


def test_no_core_is_cached_or_built_at_import_in_flows_or_tasks():
    for folder in ("tasks", "flows", "deployments"):
        for path in (ROOT / folder).glob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    decorators = {ast.unparse(d).split("(")[0] for d in node.decorator_list}
                    assert not decorators & {"lru_cache", "cache", "functools.lru_cache", "functools.cache"}, \
                        f"{path.name}:{node.name} is cached"
                if isinstance(node, ast.ImportFrom) and node.module == "tasks.context":
                    raise AssertionError(f"{path.name} imports a global core")


def test_each_flow_module_defines_flows():
    for name in modules("flows"):
        defined = defined_here(importlib.import_module(name))
        assert any(isinstance(v, Flow) for v in defined.values()), f"{name} defines no flow"


def test_the_unit_of_work_exposes_one_repository_per_aggregate(tmp_path):
    from custody.store.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    try:
        with SqlUnitOfWork(engine, read_only=True) as uow:
            repositories = {name: type(value).__name__ for name, value in vars(uow).items() if isinstance(value, Repository)}
            assert set(repositories) == {"inbox", "bookings", "cases", "detainers", "audit", "outbox", "runs",
                                         "form_reads", "roster", "step_events"}
            assert all(value.conn is uow.conn for value in vars(uow).values() if isinstance(value, Repository))
        # The unit of work itself keeps only the transaction and the person lock.
        own = {n for n, v in vars(SqlUnitOfWork).items() if callable(v) and not n.startswith("__")}
        assert own == {"commit", "rollback", "savepoint", "lock_person"}
    finally:
        engine.dispose()


def test_the_service_layer_is_handed_its_adapters_and_imports_none():
    outside = {}
    for path in (ROOT / "custody" / "service").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules_ = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        modules_ |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        bad = sorted(m for m in modules_ if m.startswith("custody.adapters") or m.split(".")[0] in
                     {"prefect", "apprise", "matplotlib", "fastapi", "uvicorn", "tasks", "flows", "deployments"})
        if bad:
            outside[str(path.relative_to(ROOT))] = bad
    assert outside == {}
