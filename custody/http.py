"""POST /events: the same validation and results as `custody ingest`, behind a
bearer token per sending system."""
from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from custody.config import SenderRegistry
from models.handlers import Core, ingest

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
            results = await run_in_threadpool(lambda: [ingest(core, item, sender).as_dict() for item in data])
            return JSONResponse({"results": results}, status_code=200)
        result = (await run_in_threadpool(ingest, core, data, sender)).as_dict()
        return JSONResponse(result, status_code=_status_for(result))

    return app
