"""models/ is the domain alone: the standard library and pydantic, nothing else.

The database, Prefect, Apprise, matplotlib and the entry points depend on the
domain (custody/), never the reverse, so a rule can be read, tested and changed
without any of them."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "models"
ALLOWED = {"pydantic", "pydantic_core", "models", "__future__"}


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside models/
                continue
            roots.add((node.module or "").split(".")[0])
    return roots


def test_every_domain_module_imports_only_the_standard_library_pydantic_and_the_domain():
    modules = sorted(MODELS.rglob("*.py"))
    assert len(modules) >= 10, modules
    outside = {}
    for path in modules:
        roots = imported_roots(path.read_text(encoding="utf-8"))
        foreign = sorted(r for r in roots if r not in ALLOWED and r not in sys.stdlib_module_names)
        if foreign:
            outside[str(path.relative_to(MODELS.parent))] = foreign
    assert outside == {}


def test_the_checker_sees_imports_anywhere_in_a_module():
    source = "import json\ndef f():\n    from sqlalchemy import text\n    import custody.cli\n"
    assert imported_roots(source) == {"json", "sqlalchemy", "custody"}


def test_importing_the_whole_domain_loads_no_infrastructure():
    names = sorted(p.stem for p in MODELS.glob("*.py") if p.stem != "__init__")
    script = ("import sys\n" + "".join(f"import models.{n}\n" for n in names)
              + "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
                "{'sqlalchemy', 'alembic', 'prefect', 'apprise', 'matplotlib', 'fastapi', 'custody', 'tasks', 'flows'})))\n")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=MODELS.parent).stdout.split()
    assert loaded == []
