"""Engagement events in: one event or a batch (POST /events is also served by fast_path.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api_stub import ingesting
from api_stub.deps import EventsWrite, State, request_id
from api_stub.reading import send
from api_stub.routers.common import EVENT_RULES, INGEST_ERRORS, PREFIX, unstated
from api_stub.schemas import BatchEnvelope, EventEnvelope

router = APIRouter(prefix=PREFIX, tags=["events"])
# A batch's events are checked one by one (against ApiEventIn), so one bad event does not refuse the others.
BATCH_RULE = "each event is an ApiEventIn: 207 when some are not, 422 when none is"


def _json_body(schema: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


@router.post(
    "/events",
    status_code=201,
    summary="Ingest Event",
    responses={201: {"model": EventEnvelope}, **INGEST_ERRORS},
    openapi_extra=unstated(*EVENT_RULES) | _json_body("ApiEventIn"),
)
async def ingest_event(
    request: Request, api: State, key: EventsWrite, idempotency_key: ingesting.IdempotencyHeader = None
) -> Response:
    status, body, extra = await ingesting.ingest_one(
        api, key, request.headers.get("content-type", ""), await request.body(), idempotency_key, request_id(request)
    )
    return send(request, status, body, extra)


@router.post(
    "/events/batch",
    status_code=201,
    summary="Ingest a batch of events",
    description="Up to 1,000 events, each validated on its own: 201 when all are accepted (or "
    "duplicates), 207 with a result per event when some are rejected, 422 when none is valid.",
    responses={201: {"model": BatchEnvelope}, 207: {"model": BatchEnvelope}, **INGEST_ERRORS},
    openapi_extra=unstated(*EVENT_RULES, BATCH_RULE) | _json_body("BatchIn"),
)
async def ingest_batch(
    request: Request, api: State, key: EventsWrite, idempotency_key: ingesting.IdempotencyHeader = None
) -> Response:
    ingesting.require_json(request.headers.get("content-type", ""))
    status, body, extra = await ingesting.ingest_batch(
        api, key, await request.body(), idempotency_key, request_id(request), request.scope["state"]["rate_headers"]
    )
    return send(request, status, body, extra)
