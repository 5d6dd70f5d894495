"""Provider webhooks (SendGrid, Mailgun): signatures verified on the raw bytes, events mapped by
leadron.webhooks and landed like any other; 200 even when some are skipped, so providers do not retry."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api_stub.deps import State, request_id
from api_stub.envelope import ApiError, json_response, success_body
from api_stub.ingest_log.records import Submission
from api_stub.ingesting import REUSED_EVENT_ID, land_events, rejected
from api_stub.routers.common import PREFIX, errors
from api_stub.schemas import WebhookEnvelope
from api_stub.state import ApiState, client_of
from leadron import tracking, webhook_auth, webhooks

log = logging.getLogger("leadron.api")
router = APIRouter(prefix=PREFIX, tags=["webhooks"])
RESPONSES = {200: {"model": WebhookEnvelope}, **errors(400, 401, 413)}


def _body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _tenant(api: ApiState, provider: str, token: str, request: Request) -> tuple[str, str]:
    """The tenant of a webhook URL and the provider key it registered; 401 for a bad URL or no key."""
    api.clients.limit_anonymous(client_of(request.scope))
    payload = tracking.verify(api.secret, tracking.WEBHOOK, token)
    if payload is None or payload.get("p") != provider or not isinstance(payload.get("t"), str):
        raise ApiError(401, "Invalid webhook URL", [{"field": "token", "issue": "invalid"}])
    verification_key = api.keys.webhook_key(payload["t"], provider)
    if verification_key is None:
        raise ApiError(
            401,
            "No webhook verification key is registered for this tenant and provider",
            [{"field": "token", "issue": "register one with leadron keys webhook-url"}],
        )
    return payload["t"], verification_key


def _refused(exc: webhook_auth.SignatureError) -> ApiError:
    return ApiError(401, "Webhook signature does not verify", [{"field": exc.field, "issue": exc.issue}])


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "Malformed JSON body", [{"field": "body", "issue": str(exc)}]) from None


async def _land(request: Request, api: ApiState, tenant: str, mapped: list[tuple[dict | None, str]]) -> Response:
    skipped = [{"index": i, "reason": reason} for i, (body, reason) in enumerate(mapped) if body is None]
    bodies = [(i, body) for i, (body, _) in enumerate(mapped) if body is not None]
    rows, positions, refused = land_events(api, tenant, bodies, "webhook")
    committed = await api.commit(Submission(rows)) if rows else None
    outcomes = committed.outcomes if committed else []
    counts = Counter(o.status for o in outcomes)
    for index, outcome in zip(positions, outcomes):
        if outcome.status == "conflict":
            refused.append(rejected(index, outcome.event_id, [REUSED_EVENT_ID]))
    if refused:
        log.warning("webhook events rejected request_id=%s: %s", request_id(request), orjson.dumps(refused).decode())
    data = {"accepted": counts["accepted"], "duplicates": counts["duplicate"], "skipped": skipped, "rejected": refused}
    # 200 even when some were skipped or rejected: a provider would otherwise retry them forever.
    return json_response(200, success_body(200, "Webhook processed", data, request_id(request)))


@router.post(
    "/webhooks/sendgrid/{token}",
    summary="SendGrid Event Webhook",
    responses=RESPONSES,
    openapi_extra=_body({"type": "array", "items": {"type": "object"}}),
)
async def sendgrid_webhook(token: str, request: Request, api: State) -> Response:
    tenant, public_key = _tenant(api, "sendgrid", token, request)
    raw = await request.body()
    try:  # the raw bytes, before parsing: what SendGrid signed
        webhook_auth.verify_sendgrid(public_key, dict(request.headers), raw, api.settings.webhook_tolerance_s)
    except webhook_auth.SignatureError as exc:
        raise _refused(exc) from None
    return await _land(request, api, tenant, webhooks.sendgrid_events(await _json(request)))


@router.post(
    "/webhooks/mailgun/{token}", summary="Mailgun webhook", responses=RESPONSES, openapi_extra=_body({"type": "object"})
)
async def mailgun_webhook(token: str, request: Request, api: State) -> Response:
    tenant, signing_key = _tenant(api, "mailgun", token, request)
    payload = await _json(request)
    try:
        await asyncio.to_thread(
            webhook_auth.verify_mailgun,
            signing_key,
            payload.get("signature") if isinstance(payload, dict) else None,
            api.settings.webhook_tolerance_s,
            api.replay,
        )
    except webhook_auth.SignatureError as exc:
        raise _refused(exc) from None
    return await _land(request, api, tenant, [webhooks.mailgun_event(payload)])
