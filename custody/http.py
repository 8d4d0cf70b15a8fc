"""POST /events: the same validation and results as `custody ingest`, behind a
bearer token per sending system."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from custody.config import SenderRegistry
from custody.encoding import TWICE, NotUtf8, named_twice, parse_json, utf8_text
from custody.service.core import Core
from custody.service.intake import IngestResult, echoable_id, ingest, ingest_many
from custody.store.db import DatabaseBusy
from models.event_schema import event_json_schema
from models.events import Refusal

MAX_BODY_BYTES = 1_048_576
MAX_BATCH = 1000
RETRY_AFTER_SECONDS = 2  # a busy database (another writer's lock) is a matter of moments


def _busy() -> JSONResponse:
    return _error(503, "database", "busy with another writer; nothing was stored: send the same request again",
                  **{"Retry-After": str(RETRY_AFTER_SECONDS)})


def _error(status: int, field: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": f"{field}: {message}"}, status_code=status, headers=headers or None)


REFUSAL_STATUS = {Refusal.INVALID: 422, Refusal.NOT_PERMITTED: 403, Refusal.CONFLICT: 409}


def _status_for(result: IngestResult) -> int:
    if result.result == "accepted":
        return 201
    if result.result == "duplicate":
        return 200
    return REFUSAL_STATUS[result.refusal]


def _batch_status(results: list[IngestResult]) -> int:
    """An array is answered 200 when it stored something (or repeated what was
    stored); when every event in it was refused, with the refusal's own 4xx, so
    a sender that checks only the status never takes a refused batch for done."""
    if any(r.result != "rejected" for r in results):
        return 200
    statuses = {_status_for(r) for r in results}
    return statuses.pop() if len(statuses) == 1 else 422


RESULT = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "result": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
    "reason": {"type": "string", "description": "FIELD: what is wrong (rejections only)"},
    "case_id": {"type": "string"}, "outcome": {"type": "string"}}, "required": ["result"]}
RESULTS = {"type": "object", "properties": {"results": {"type": "array", "items": RESULT}}, "required": ["results"]}
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def openapi_schema(app: FastAPI, now: datetime) -> dict[str, Any]:
    """The contract of interface.md as OpenAPI: the event union is generated from
    the same pydantic models that validate requests, so the two cannot drift; its
    time bounds are those intake applies at `now`."""
    schema = get_openapi(title="custody event intake", version="1", routes=app.routes,
                         description="Events from the jail system, ICE, officers and staff. Every request needs "
                                     "`Authorization: Bearer TOKEN`; a token may send only its own event types. "
                                     "A JSON object that names a member twice is refused (400, naming it), and free "
                                     "text holds no control or invisible formatting characters (Unicode category Cf).")
    event = event_json_schema(now, ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(event.pop("$defs", {}))
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    schema["security"] = [{"bearer": []}]
    post = schema["paths"]["/events"]["post"]
    post["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
        event, {"type": "array", "items": event, "minItems": 1, "maxItems": MAX_BATCH}]}}}}
    json_of = lambda s: {"content": {"application/json": {"schema": s}}}
    post["responses"] = {
        "201": {"description": "accepted: stored and applied", **json_of(RESULT)},
        "200": {"description": "a duplicate of an accepted event, or an array's results when it stored anything",
                **json_of({"oneOf": [RESULT, RESULTS]})},
        "400": {"description": "the body is not UTF-8 JSON, names a member of an object twice, or is an empty array",
                **json_of(ERROR)},
        "401": {"description": "no token or a wrong one; nothing stored", **json_of(ERROR)},
        "403": {"description": "this sender may not send this event type", **json_of({"oneOf": [RESULT, RESULTS]})},
        "409": {"description": "the event id was used for a different event", **json_of({"oneOf": [RESULT, RESULTS]})},
        "413": {"description": "the body or the batch is too large", **json_of(ERROR)},
        "415": {"description": "the body is not declared as application/json (UTF-8), or is compressed", **json_of(ERROR)},
        "422": {"description": "rejected: the reason names the field (for an array: every event was rejected)",
                **json_of({"oneOf": [RESULT, RESULTS]})},
        "503": {"description": "the database is busy with another writer: nothing was stored; send the same "
                               "request again after Retry-After seconds",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}}, **json_of(ERROR)},
    }
    health = schema["paths"]["/health"]["get"]
    health["responses"]["401"] = {"description": "no token or a wrong one", **json_of(ERROR)}
    return schema


class _TokenGate:
    """Every request, to any path and with any method, shows a sender's token
    before anything else is looked at (issue 5: nothing in the endpoint is
    reachable without one). That includes "not found" and "method not allowed",
    which would tell a stranger what exists, and the schema and the health check."""

    def __init__(self, app: Any, senders: SenderRegistry):
        self.app, self.senders = app, senders

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        sender = self.senders.authenticate(_bearer(scope))
        if sender is not None:
            scope["custody.sender"] = sender
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        response = _error(401, "authorization", "a valid bearer token is required", **{"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def _bearer(scope: dict) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _content_type_problem(request: Request) -> str | None:
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != "application/json":
        return f"must be application/json, not {media.strip()[:60] or 'missing'!r}"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return f"charset {value.strip()[:30]!r}: events are UTF-8 JSON"
    return None


def create_app(core: Core, senders: SenderRegistry) -> FastAPI:
    app = FastAPI(title="custody event intake", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_TokenGate, senders=senders)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi():
        return openapi_schema(app, core.clock.now())

    # /health needs a token like everything else: the policy it names is not for
    # strangers, and a liveness probe has its answer without one (a 401 comes
    # only from a running endpoint; a dead one refuses the connection).
    @app.get("/health")
    async def health():
        return {"status": "ok", "policy": core.policy.name, "mode": str(core.policy.mode)}

    @app.post("/events")
    async def post_events(request: Request):
        sender = request.scope["custody.sender"]
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
        problem = _content_type_problem(request)
        if problem:
            return _error(415, "content-type", problem)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            return _error(415, "content-encoding", f"{encoding[:30]!r} is not accepted; send the JSON as it is")
        chunks, size = [], 0
        async for chunk in request.stream():  # a chunked body has no length to check up front
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _error(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        try:
            data = parse_json(utf8_text(b"".join(chunks)))
        except NotUtf8 as exc:
            return _error(400, "body", str(exc))
        except (ValueError, RecursionError):
            return _error(400, "body", "is not valid JSON")
        if isinstance(data, list):
            if not data:
                return _error(400, "body", "an empty array holds no events")
            if len(data) > MAX_BATCH:
                return _error(413, "body", f"more than {MAX_BATCH} events in one request")
            twice = [named_twice(item) for item in data]  # refused one by one, as any other bad event of a batch
            try:
                stored = iter(await run_in_threadpool(ingest_many, core, [e for e, t in zip(data, twice) if t is None], sender))
            except DatabaseBusy:
                return _busy()
            results = [next(stored) if t is None else IngestResult(echoable_id(item), "rejected", f"{t}: {TWICE}")
                       for item, t in zip(data, twice)]
            return JSONResponse({"results": [r.as_dict() for r in results]}, status_code=_batch_status(results))
        twice = named_twice(data)
        if twice is not None:
            return _error(400, twice, TWICE)
        try:
            result = await run_in_threadpool(ingest, core, data, sender)
        except DatabaseBusy:
            return _busy()
        return JSONResponse(result.as_dict(), status_code=_status_for(result))

    return app
