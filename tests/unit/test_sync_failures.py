"""A failure to bring a run in step is said for what it is: Prefect absent or
starting is an outage the reconciler rides out; anything else is a fault,
logged with its traceback, never passed off as "Prefect not reachable"."""
from __future__ import annotations

import httpx
from prefect.exceptions import ObjectNotFound

from custody.adapters.prefect.sync import why_not_in_step

REQUEST = httpx.Request("GET", "http://127.0.0.1:4200/api/deployments/name/custody-case/case")


def answered(status: int) -> httpx.HTTPStatusError:
    return httpx.HTTPStatusError("x", request=REQUEST, response=httpx.Response(status, request=REQUEST))


def test_a_server_that_cannot_be_reached_is_an_outage():
    said = why_not_in_step(httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST))
    assert said.startswith("Prefect not reachable (ConnectError: ")
    assert why_not_in_step(ConnectionRefusedError(111, "refused")).startswith("Prefect not reachable")
    assert why_not_in_step(httpx.ReadTimeout("timed out", request=REQUEST)).startswith("Prefect not reachable")


def test_a_server_without_the_case_deployment_is_still_starting():
    said = why_not_in_step(ObjectNotFound(answered(404)))
    assert "no custody-case/case deployment yet" in said


def test_a_server_error_is_said_with_its_status():
    assert why_not_in_step(answered(503)) == "the Prefect server answered 503"


def test_a_fault_of_ours_or_a_refused_request_is_not_an_outage():
    assert why_not_in_step(KeyError("flow_run_id")) is None
    assert why_not_in_step(TypeError("bad argument")) is None
    assert why_not_in_step(answered(422)) is None
