"""Looking for personal data where it must not be: files on disk (databases,
their write-ahead logs, result storage, logs) and what the Prefect API serves."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class Person:
    name: str
    dob: str  # YYYY-MM-DD
    a_number: str  # A and nine digits

    def name_needles(self) -> set[str]:
        return {self.name, *(part for part in self.name.replace("-", " ").split() if len(part) >= 6)}

    def dob_needles(self) -> set[str]:
        d = date.fromisoformat(self.dob)
        return {self.dob, d.strftime("%m/%d/%Y"), d.strftime("%d/%m/%Y"), d.strftime("%Y%m%d"), d.strftime("%d.%m.%Y")}

    def a_number_needles(self) -> set[str]:
        digits = self.a_number[1:]
        return {self.a_number, digits, f"{digits[:3]}-{digits[3:6]}-{digits[6:]}", f"A-{digits}"}

    def needles(self) -> dict[str, str]:
        """needle -> what it is (for the failure message)."""
        found = {n: "name" for n in self.name_needles()}
        found.update({n: "date of birth" for n in self.dob_needles()})
        found.update({n: "A-number" for n in self.a_number_needles()})
        return found


def files_under(*roots: Path) -> list[Path]:
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def occurrences(needles: dict[str, str], files: list[Path]) -> list[str]:
    """Where any needle occurs, byte for byte, case-insensitively (UTF-8 and UTF-16)."""
    found = []
    for path in files:
        data = path.read_bytes().lower()
        for needle, what in needles.items():
            low = needle.lower()
            if low.encode() in data or low.encode("utf-16-le") in data:
                found.append(f"{what} {needle!r} in {path}")
    return found


def prefect_api_text() -> dict[str, str]:
    """Everything the Prefect API serves about runs: names, parameters, tags,
    states, run inputs (the officer's form), artifacts (every version), logs,
    deployments. Keyed by where it came from."""
    from prefect.client.orchestration import get_client

    texts: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        runs, offset = [], 0
        while True:
            page = client.read_flow_runs(limit=200, offset=offset)
            runs += page
            offset += len(page)
            if len(page) < 200:
                break
        for run in runs:
            texts[f"flow run {run.name}"] = run.model_dump_json()
            inputs = client.filter_flow_run_input(run.id, key_prefix="", limit=1000, exclude_keys=set())
            if inputs:
                texts[f"inputs of flow run {run.name}"] = " ".join(i.model_dump_json() for i in inputs)
        artifacts, offset = [], 0
        while True:
            page = client.read_artifacts(limit=200, offset=offset)
            artifacts += page
            offset += len(page)
            if len(page) < 200:
                break
        for artifact in artifacts:
            texts[f"artifact {artifact.key} {artifact.id}"] = artifact.model_dump_json()
        logs, offset = [], 0
        while True:
            page = client.read_logs(limit=200, offset=offset)
            logs += page
            offset += len(page)
            if len(page) < 200:
                break
        texts["logs"] = "\n".join(log.model_dump_json() for log in logs)
        texts["deployments"] = "\n".join(d.model_dump_json() for d in client.read_deployments())
        texts["case step events"] = "\n".join(json.dumps(e) for e in case_step_events(client))
    assert runs and artifacts and logs and texts["case step events"], "the Prefect API served nothing to search"
    return texts


def case_step_events(client, resource_id: str | None = None) -> list[dict]:
    """The custody.case.* events in Prefect's feed (of one case: its resource id), oldest first."""
    body = {"filter": {"event": {"prefix": ["custody.case."]}, "order": "ASC",
                       "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 50}
    if resource_id:
        body["filter"]["resource"] = {"id": [resource_id]}
    found = []
    page = client.request("POST", "/events/filter", json=body).json()
    while True:
        found += page["events"]
        if not page.get("next_page"):
            return found
        page = client._client.get(page["next_page"]).json()


def in_texts(needles: dict[str, str], texts: dict[str, str]) -> list[str]:
    return [f"{what} {needle!r} in {where}" for where, text in texts.items() for needle, what in needles.items()
            if needle.lower() in text.lower()]
