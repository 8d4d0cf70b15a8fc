"""POST /events: the same validation and results as `custody ingest`, behind a
bearer token per sending system."""
from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from custody.config import SenderRegistry
from models.events import Event
from models.handlers import Core, ingest, ingest_many

MAX_BODY_BYTES = 1_048_576
MAX_BATCH = 1000


def _error(status: int, field: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": f"{field}: {message}"}, status_code=status, headers=headers or None)


def _status_for(result: dict[str, Any]) -> int:
    if result["result"] == "accepted":
        return 201
    if result["result"] == "duplicate":
        return 200
    reason = result.get("reason", "")
    if reason.startswith("type: sender"):
        return 403
    if reason.startswith("event_id: already used"):
        return 409
    return 422


RESULT = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "result": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
    "reason": {"type": "string", "description": "FIELD: what is wrong (rejections only)"},
    "case_id": {"type": "string"}, "outcome": {"type": "string"}}, "required": ["result"]}
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The contract of interface.md as OpenAPI: the event union is generated from
    the same pydantic models that validate requests, so the two cannot drift."""
    schema = get_openapi(title="custody event intake", version="1", routes=app.routes,
                         description="Events from the jail system, ICE, officers and staff. Every request needs "
                                     "`Authorization: Bearer TOKEN`; a token may send only its own event types.")
    event = TypeAdapter(Event).json_schema(ref_template="#/components/schemas/{model}")
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
        "200": {"description": "a duplicate of an accepted event, or an array's results",
                **json_of({"oneOf": [RESULT, {"type": "object", "properties": {"results": {"type": "array", "items": RESULT}}}]})},
        "400": {"description": "the body is not UTF-8 JSON, or an empty array", **json_of(ERROR)},
        "401": {"description": "no token or a wrong one; nothing stored", **json_of(ERROR)},
        "403": {"description": "this sender may not send this event type", **json_of(RESULT)},
        "409": {"description": "the event id was used for a different event", **json_of(RESULT)},
        "413": {"description": "the body or the batch is too large", **json_of(ERROR)},
        "422": {"description": "rejected: the reason names the field", **json_of(RESULT)},
    }
    health = schema["paths"]["/health"]["get"]
    health["responses"]["401"] = {"description": "no token or a wrong one", **json_of(ERROR)}
    return schema


def create_app(core: Core, senders: SenderRegistry) -> FastAPI:
    app = FastAPI(title="custody event intake", docs_url=None, redoc_url=None, openapi_url=None)

    def _authenticate(request: Request):
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return senders.authenticate(token.strip())

    def _unauthorized() -> JSONResponse:
        return _error(401, "authorization", "a valid bearer token is required", **{"WWW-Authenticate": "Bearer"})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request):
        if _authenticate(request) is None:
            return _unauthorized()
        return openapi_schema(app)

    @app.get("/health")
    async def health(request: Request):
        if _authenticate(request) is None:
            return _unauthorized()
        return {"status": "ok", "policy": core.policy.name, "mode": str(core.policy.mode)}

    @app.post("/events")
    async def post_events(request: Request):
        sender = _authenticate(request)
        if sender is None:
            return _unauthorized()
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            return _error(400, "body", "is not UTF-8 text")
        except (ValueError, RecursionError):
            return _error(400, "body", "is not valid JSON")
        if isinstance(data, list):
            if not data:
                return _error(400, "body", "an empty array holds no events")
            if len(data) > MAX_BATCH:
                return _error(413, "body", f"more than {MAX_BATCH} events in one request")
            results = [r.as_dict() for r in await run_in_threadpool(ingest_many, core, data, sender)]
            return JSONResponse({"results": results}, status_code=200)
        result = (await run_in_threadpool(ingest, core, data, sender)).as_dict()
        return JSONResponse(result, status_code=_status_for(result))

    return app
