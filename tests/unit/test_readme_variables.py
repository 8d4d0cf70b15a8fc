"""Every variable the code reads is in the README's configuration."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_custody_variable_the_code_reads_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    read = set()
    for folder in ("custody", "flows", "tasks", "deployments"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(re.findall(r"\bCUSTODY_[A-Z_]+[A-Z]\b", path.read_text(encoding="utf-8")))
    assert len(read) >= 10
    assert sorted(v for v in read if f"`{v}`" not in readme) == []
