"""Engagement tracking: the open pixel and the click redirect, from signed, expiring tokens."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from api_stub.deps import State
from api_stub.envelope import ApiError
from api_stub.ingest_log.records import Submission, encode_event
from api_stub.ingesting import now
from api_stub.routers.common import PREFIX, errors
from api_stub.schemas import ApiEventIn
from api_stub.state import ApiState, client_of
from leadron import tracking

router = APIRouter(prefix=PREFIX, tags=["tracking"])
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _unknown_link() -> ApiError:
    return ApiError(404, "Unknown tracking link", [])


def _tracked(api: ApiState, kind: str, token: str, request: Request) -> dict[str, Any]:
    api.clients.limit_anonymous(client_of(request.scope))
    payload = tracking.verify_tracking(api.secret, kind, token)
    if payload is None or not isinstance(payload.get("t"), str) or not isinstance(payload.get("m"), str):
        raise _unknown_link()
    return payload


async def _land(api: ApiState, token: str, payload: dict[str, Any], body: dict[str, Any], request: Request) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    agent = request.headers.get("user-agent", "")[:1024]
    client = client_of(request.scope)
    # The same link from the same client within LEADRON_TRACKING_DEDUP_SECONDS lands once.
    body |= {
        "eventId": tracking.repeat_id(token, f"{client}|{agent}", api.settings.tracking_dedup_s),
        "leadId": payload.get("l"),
        "messageId": payload.get("m"),
        "workflowExecutionId": payload.get("x"),
    }
    if agent:
        body["userAgent"] = agent
    if client:
        body["ip"] = client
    try:
        event = ApiEventIn.model_validate_json(orjson.dumps({k: v for k, v in body.items() if v is not None}))
    except ValidationError as exc:
        raise _unknown_link() from exc
    await api.commit(Submission([encode_event(event, payload["t"], now(), "tracking", 0)]))


@router.get(
    "/track/open/{token}",
    summary="Open pixel (1x1 GIF)",
    responses={200: {"content": {"image/gif": {}}}, **errors(404)},
    response_class=Response,
)
async def open_pixel(token: str, request: Request, api: State) -> Response:
    payload = _tracked(api, tracking.OPEN, token, request)
    await _land(api, token, payload, {"eventType": "email_open"}, request)
    return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store, max-age=0"})


@router.get(
    "/track/click/{token}",
    summary="Click redirect",
    responses={302: {"description": "Redirect to the signed URL"}, **errors(404)},
    response_class=RedirectResponse,
    status_code=302,
)
async def click_redirect(token: str, request: Request, api: State) -> Response:
    payload = _tracked(api, tracking.CLICK, token, request)
    url = payload.get("u")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _unknown_link()
    await _land(api, token, payload, {"eventType": "link_click", "url": url}, request)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
