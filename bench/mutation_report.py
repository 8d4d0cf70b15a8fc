"""bench/results/mutation.md from mutmut's results (`bash bench/mutation`).

A mutant counts as killed when a test failed on it or it ran past mutmut's
time limit (an endless loop is caught as surely as a wrong answer). One no
test reaches ("no tests") counts against the score like one that survived.
"""
from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

KILLED = frozenset({"killed", "timeout"})
LINE = re.compile(r"^\s*(?P<name>models\.[^:]+):\s*(?P<status>.+?)\s*$")


def parse(text: str) -> dict[str, str]:
    return {m["name"]: m["status"] for m in map(LINE.match, text.splitlines()) if m}


def module_of(name: str) -> str:
    return name.split(".")[1]


def function_of(name: str) -> str:
    """`models.case.xǁCaseǁlift__mutmut_3` -> `Case.lift`."""
    local = name.split(".", 2)[2].rsplit("__mutmut_", 1)[0]
    return local.removeprefix("x_").removeprefix("xǁ").replace("ǁ", ".")


def report(results: dict[str, str], commit: str, now: datetime) -> str:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in results.items():
        by_module[module_of(name)][status] += 1
    total = len(results)
    killed = sum(1 for s in results.values() if s in KILLED)
    lines = ["# Mutation testing of the domain", "",
             f"`bash bench/mutation` at {now:%Y-%m-%d %H:%M} UTC, custody commit {commit}: mutmut over `models/`, "
             "with the unit tests (`tests/unit/`).", "",
             f"**Score: {killed} of {total} mutants killed ({100 * killed / total:.1f}%).** The aim is at least 90%.", "",
             "| module | mutants | killed | survived | no test reaches it | score |", "|---|---|---|---|---|---|"]
    for module, counts in sorted(by_module.items()):
        n, k = sum(counts.values()), sum(counts[s] for s in KILLED)
        lines.append(f"| `models/{module}.py` | {n} | {k} | {counts['survived']} | {counts['no tests']} | {100 * k / n:.0f}% |")
    alive = defaultdict(list)
    for name, status in sorted(results.items()):
        if status not in KILLED:
            alive[f"{module_of(name)}: {function_of(name)}"].append(f"{name.rsplit('__mutmut_', 1)[1]}{'' if status == 'survived' else ' (no test)'}")
    lines += ["", "## Mutants not killed, by function", "",
              "Each is named as mutmut names it: `mutmut show models.case.xǁCaseǁlift__mutmut_3`, run in the copy "
              "`bash bench/mutation` works in, prints its change.", "",
              "| function | mutants not killed (mutmut's number) |", "|---|---|"]
    lines += [f"| `{where}` | {', '.join(numbers)} |" for where, numbers in sorted(alive.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return "\n".join(lines) + "\n"


def main() -> int:
    results = parse(Path(sys.argv[1]).read_text(encoding="utf-8"))
    if not results:
        print("no mutmut results to report", file=sys.stderr)
        return 1
    sys.stdout.write(report(results, sys.argv[2], datetime.now(timezone.utc)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
