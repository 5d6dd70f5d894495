"""The HTTP API: `create_app(settings)` builds the ASGI app; `leadron serve` runs it with uvicorn.

Middleware (request ids, the body limit, the single-event fast path), the envelope's error handlers and one
router per section of the API reference (api_stub/routers/).
"""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response

from api_stub import errors
from api_stub.envelope import json_response
from api_stub.fast_path import SingleEventFastPath
from api_stub.middleware import RequestContextMiddleware
from api_stub.routers import (
    dashboard,
    exports,
    form_submissions,
    ingest,
    leads,
    page_visits,
    predictive,
    reports,
    scheduled_reports,
    status,
    tracking,
    webhooks,
)
from api_stub.routers.common import RULES_KEY
from api_stub.schemas import ApiEventIn, BatchIn
from api_stub.state import ApiState
from leadron.settings import Settings, get_settings

GC_GEN0_THRESHOLD = 20_000
ROUTERS = (
    ingest,
    status,
    tracking,
    webhooks,
    leads,
    form_submissions,
    page_visits,
    dashboard,
    predictive,
    reports,
    scheduled_reports,
    exports,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    state = ApiState(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        # Everything loaded so far (FastAPI, pydantic, DuckDB, Arrow: ~10^6 objects) lives as long as the process.
        # Frozen, the cyclic GC stops re-scanning it on every collection — and a batch of 500 events triggers
        # collections all the time. Measured here: 2.0 s of a 10 s load run in GC; 50k → 65k batch events/s.
        gc.freeze()
        # And a collection every GC_GEN0_THRESHOLD container allocations instead of CPython's 700: a batch
        # allocates a few per event (models, stored events, results), so with 700 the collector ran several
        # times per request (measured in-process, one client, sealer and status index idle: 21.0 → 16.5 µs of CPU per
        # batch event).
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="Leadron Analytics API",
        version="v1",
        description="Engagement events in; analytics out. Auth: `X-API-Key: ldr_live_sk_...`. "
        "Every response uses the platform's envelope.",
        lifespan=lifespan,
    )
    app.state.api = state
    errors.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    app.state.api_routes = [route for module in ROUTERS for route in module.router.routes]  # for 405's Allow
    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.openapi = lambda: openapi(app)
    # Outermost first: request ids and the body limit, then the single-event fast path, then FastAPI.
    app.add_middleware(SingleEventFastPath, api=state)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=state.settings.api_max_body_bytes)
    return app


async def health() -> Response:
    return json_response(200, orjson.dumps({"status": "ok"}))


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request bodies the ingest routes validate themselves (from raw bytes)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in (("ApiEventIn", ApiEventIn), ("BatchIn", BatchIn)):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definition.pop("$defs", {}))
        components[name] = definition
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if rules := operation.get(RULES_KEY):
                operation["responses"]["422"]["description"] = (
                    "Validation failed: a field breaks its schema, or one of these rules: " + "; ".join(rules) + "."
                )
    app.openapi_schema = schema
    return schema
