"""The HTTP API: event ingestion, tracking pixel and redirect, provider webhooks, event status.

`create_app(settings)` builds the ASGI app; `leadron serve` runs it with uvicorn.
Handlers validate bytes with pydantic directly (a single body as one event, a
batch body as a batch) and answer with the platform's envelope.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import hashlib
import logging
import re
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from api_stub import analytics_routes, report_routes
from leadron import tracking, webhook_auth, webhooks
from leadron.contract import describe_errors
from api_stub.envelope import ApiError, error_body, iso_ms, json_response, success_body
from api_stub.event_store import (Committed, EventStore, IdempotencyRecord, Outcome, StoredEvent, Submission,
                                  encode_event, encode_events)
from leadron.keystore import ApiKey, KeyStore
from api_stub.middleware import RequestContextMiddleware
from api_stub.published import PublishedReader
from api_stub.reading import send
from api_stub.ratelimit import COST, ClientLimits, RateLimiter
from api_stub.schemas import (
    ApiEventIn, BatchEnvelope, BatchIn, ErrorEnvelope, EventEnvelope, StatusEnvelope, ValidBatchIn, WebhookEnvelope,
)
from leadron.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger("leadron.api")
PREFIX = "/v1/analytics"
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
SCANNERS_CSV = PROJECT_ROOT / "dbt_project" / "seeds" / "scanner_user_agents.csv"
BOT_WINDOW = timedelta(seconds=2)
ERRORS = {code: {"model": ErrorEnvelope} for code in (400, 401, 403, 409, 413, 415, 422, 429)}


def unauthorized() -> ApiError:
    return ApiError(401, "Invalid or missing API key", [{"field": "X-API-Key", "issue": "invalid or missing"}])


def request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def _validation_error(exc: ValidationError) -> ApiError:
    details = describe_errors(exc)
    if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
        return ApiError(400, "Malformed JSON body", [{"field": "body", "issue": d["issue"]} for d in details][:1])
    return ApiError(422, "Validation failed", details)


def _event_data(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["event_id"], "tenantId": row["tenant_id"], "type": row["event_type"],
            "leadId": row["lead_id"], "messageId": row["message_id"],
            "workflowExecutionId": row["workflow_execution_id"], "timestamp": iso_ms(row["occurred_at"])}


def _request_hash(event: ApiEventIn) -> str:
    # The validated event, not its bytes: a retry that re-serialises the same event is the same request.
    return hashlib.sha256(event.model_dump_json(exclude={"tenantId"}).encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Api:
    """Shared state of one server process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        settings.restrict_permissions()
        self.keys = KeyStore(settings.api_keys_path)
        self.store = EventStore(settings)
        self.reader = PublishedReader(settings)
        self.on_close: list = []  # shutdown hooks of the route modules
        # Each of N workers enforces 1/N of every limit: together they never allow more than the limit
        # (the kernel spreads connections evenly across SO_REUSEPORT sockets).
        share = settings.api_workers
        self.limiter = RateLimiter(settings.api_rate_per_s / share, settings.api_rate_burst / share)
        self.clients = ClientLimits(settings.auth_failure_rate / share, settings.anonymous_rate / share)
        self.replay = webhook_auth.ReplayCache(settings.api_dir / "webhook_replay.sqlite")
        self.secret = settings.secret()
        with SCANNERS_CSV.open() as fh:
            self.scanners = [r["pattern"].lower() for r in csv.DictReader(fh)]

    # ---- auth + rate limit ------------------------------------------------------------------
    def authenticate(self, api_key: str | None, scope: str, client: str,
                     cost: float = COST["request"]) -> tuple[ApiKey, dict[str, str]]:
        """The key and its rate-limit headers; ApiError 401 / 429 / 403 otherwise.

        A client address whose failed authentications use up LEADRON_AUTH_FAILURE_RATE gets 429 before its
        key is even looked at, so keys cannot be guessed at network speed."""
        self.clients.refuse_if_failing(client)
        key = self.keys.authenticate(api_key)
        if key is None:
            self.clients.failed(client)
            raise unauthorized()
        headers = self.charge(key, cost)
        if scope not in key.scopes:
            raise ApiError(403, f"The API key lacks the {scope} scope",
                           [{"field": "X-API-Key", "issue": f"needs {scope}"}], headers=headers)
        return key, headers

    def charge(self, key: ApiKey, cost: float, headers: dict[str, str] | None = None) -> dict[str, str]:
        """Take `cost` units from the key's bucket: its rate-limit headers, or ApiError 429."""
        allowed, remaining, retry_after = self.limiter.take(key.key_id, cost)
        headers = {"X-RateLimit-Limit": str(int(self.settings.api_rate_per_s)), "X-RateLimit-Remaining": str(remaining)}
        if not allowed:
            raise ApiError(429, "Rate limit exceeded", [{"field": "X-API-Key", "issue": "too many requests"}],
                           headers=headers | {"Retry-After": str(retry_after)})
        return headers

    def too_old(self, stored: StoredEvent, field: str = "timestamp") -> dict[str, str] | None:
        """Events before the first daily partition could never be loaded: refuse them (as import does)."""
        start = self.settings.partition_start
        if stored.event_date < start:
            return {"field": field, "issue": f"before the first partition day LEADRON_PARTITION_START={start}"}
        return None

    async def commit(self, submission: Submission) -> Committed:
        committed = await asyncio.wrap_future(self.store.submit(submission))
        return committed.finish(submission)

    async def ingest_one(self, key: ApiKey, content_type: str, raw: bytes, idempotency_key: str | None,
                         rid: str) -> tuple[int, bytes, dict[str, str]]:
        """POST /v1/analytics/events after authentication: (status, body, extra headers)."""
        _require_json(content_type)
        try:
            event = ApiEventIn.model_validate_json(raw)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        if event.tenantId is not None and event.tenantId != key.tenant_id:
            raise ApiError(403, "tenantId does not match the API key's tenant",
                           [{"field": "tenantId", "issue": "must be the API key's tenant or omitted"}])
        stored = encode_event(event, key.tenant_id, _now(), "api", 0)
        if issue := self.too_old(stored):
            raise ApiError(422, "Validation failed", [issue])

        def render(outcomes: list[Outcome]) -> tuple[int, bytes]:
            outcome = outcomes[0]
            if outcome.status == "conflict":
                return 409, error_body(409, "eventId was already used for a different event",
                                       [{"field": "eventId", "issue": "already used with a different body"}], rid)
            return 201, success_body(201, "Event ingested", _event_data(outcome.row), rid)

        idem = _idempotency(key, "events", idempotency_key, _request_hash(event) if idempotency_key else "")
        committed = await self.commit(Submission([stored], idem, render))
        if committed.conflict:
            raise ApiError(409, "Idempotency-Key was already used with a different request",
                           [{"field": "Idempotency-Key", "issue": "reused with a different body"}])
        replayed = committed.replayed or (committed.outcomes and committed.outcomes[0].status == "duplicate")
        return committed.status, committed.body, {"Idempotent-Replayed": "true"} if replayed else {}


IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")  # visible ASCII, as in the OpenAPI document
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY.pattern,
                                                  description="Retry safely: the same key and body replay the "
                                                              "first response; another body gets 409.")]


def _idempotency(key: ApiKey, route: str, header: str | None, request_hash: str) -> IdempotencyRecord | None:
    if header is None:
        return None
    if not IDEMPOTENCY_KEY.match(header):
        raise ApiError(422, "Invalid Idempotency-Key",
                       [{"field": "Idempotency-Key", "issue": "1-255 visible ASCII characters"}])
    return IdempotencyRecord(key.tenant_id, route, header, request_hash)


def _require_json(content_type: str) -> None:
    if "json" not in content_type.split(";")[0]:
        raise ApiError(415, "Content-Type must be application/json",
                       [{"field": "Content-Type", "issue": "expected application/json"}])


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state = Api(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.store.start()
        # Everything loaded so far (FastAPI, pydantic, DuckDB, Arrow: ~10^6 objects) lives as long as the process.
        # Frozen, the cyclic GC stops re-scanning it on every collection — and a batch of 500 events triggers
        # collections all the time. Measured here: 2.0 s of a 10 s load run in GC; 50k → 65k batch events/s.
        gc.freeze()
        try:
            yield
        finally:
            for hook in state.on_close:
                hook()
            state.store.close()
            state.reader.close()

    app = FastAPI(
        title="Leadron Analytics API",
        version="v1",
        description="Engagement events in; analytics out. Auth: `X-API-Key: ldr_live_sk_...`. "
                    "Every response uses the platform's envelope.",
        lifespan=lifespan,
    )
    app.state.api = state

    def auth(scope: str, cost: float = COST["request"]):
        async def dependency(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
            key, headers = state.authenticate(x_api_key, scope, client_of(request.scope), cost)
            request.scope["state"]["rate_headers"] = headers
            return key
        return dependency

    events_write = Depends(auth("events:write"))
    analytics_read = Depends(auth("analytics:read"))
    analytics_routes.register(app, state, analytics_read, Depends(auth("analytics:read", COST["heavy_read"])))
    report_routes.register(app, state, analytics_read, Depends(auth("reports:write")), Depends(auth("exports:write")),
                           Depends(auth("reports:write", COST["heavy_read"])),
                           Depends(auth("exports:write", COST["export"])))

    # ---- errors as envelopes ------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        headers = dict(request.scope.get("state", {}).get("rate_headers", {})) | (exc.headers or {})
        return json_response(exc.status, error_body(exc.status, exc.message, exc.details, request_id(request), exc.code),
                             headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return json_response(400, error_body(400, "Malformed JSON body", [{"field": "body", "issue": "not valid JSON"}],
                                                 request_id(request)))
        details = [{"field": ".".join(str(p) for p in e["loc"] if p not in ("query", "header", "path", "body")),
                    "issue": e["msg"]} for e in exc.errors()]
        return json_response(422, error_body(422, "Validation failed", details, request_id(request)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
        # Keep Starlette's headers (e.g. Allow on 405).
        return json_response(exc.status_code, error_body(exc.status_code, message, [], request_id(request)),
                             dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error request_id=%s", request_id(request))
        return json_response(500, error_body(500, "Internal error", [], request_id(request)))

    ok = send
    # ---- ingest ---------------------------------------------------------------------------------
    @app.post(f"{PREFIX}/events", status_code=201, tags=["events"], summary="Ingest Event",
              responses={201: {"model": EventEnvelope}, **ERRORS},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/ApiEventIn"}}}}})
    async def ingest_event(
        request: Request, key: ApiKey = events_write,
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        status, body, extra = await state.ingest_one(
            key, request.headers.get("content-type", ""), await request.body(), idempotency_key, request_id(request))
        return ok(request, status, body, extra)

    @app.post(f"{PREFIX}/events/batch", status_code=201, tags=["events"], summary="Ingest a batch of events",
              description="Up to 1,000 events, each validated on its own: 201 when all are accepted (or "
                          "duplicates), 207 with a result per event when some are rejected, 422 when none is valid.",
              responses={201: {"model": BatchEnvelope}, 207: {"model": BatchEnvelope}, **ERRORS},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/BatchIn"}}}}})
    async def ingest_batch(
        request: Request, key: ApiKey = events_write,
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        _require_json(request.headers.get("content-type", ""))
        raw = await request.body()
        received = _now()
        items, results = validate_batch(raw)
        total = len(items) + len(results)
        if total > 1:  # a batch costs its events (the dependency took one)
            request.scope["state"]["rate_headers"] = state.charge(key, total - 1)
        rows: list[StoredEvent] = []
        positions: list[int] = []  # index in the batch of each stored event
        for index, event in items:
            if event.tenantId is not None and event.tenantId != key.tenant_id:
                raise ApiError(403, "tenantId does not match the API key's tenant",
                               [{"field": f"events.{index}.tenantId", "issue": "must be the API key's tenant or omitted"}])
        for (index, _), stored in zip(items, encode_events(items, key.tenant_id, received, "api")):
            if issue := state.too_old(stored):
                results[index] = {"index": index, "status": "rejected", "id": stored.event_id, "errors": [issue]}
                continue
            rows.append(stored)
            positions.append(index)
        rid = request_id(request)

        def render(outcomes: list[Outcome]) -> tuple[int, bytes]:
            merged = dict(results)
            for index, (status, event) in zip(positions, outcomes):  # per event of every batch: kept lean
                if status == "conflict":
                    merged[index] = {"index": index, "status": "rejected", "id": event.event_id, "errors": [
                        {"field": "eventId", "issue": "already used with a different body"}]}
                else:
                    merged[index] = {"index": index, "status": status, "id": event.event_id, "errors": []}
            items = [merged[i] for i in range(total)] if results else list(merged.values())
            counts = Counter([i["status"] for i in items])
            if counts["rejected"] == len(items):
                details = [{"field": f"events.{i['index']}.{e['field']}", "issue": e["issue"]}
                           for i in items for e in i["errors"]]
                return 422, error_body(422, "No event of the batch was valid", details, rid)
            status = 201 if counts["rejected"] == 0 else 207
            data = {"accepted": counts["accepted"], "duplicates": counts["duplicate"], "rejected": counts["rejected"],
                    "results": items}
            return status, success_body(status, f"Batch processed: {counts['accepted']} accepted, "
                                                f"{counts['duplicate']} duplicate, {counts['rejected']} rejected",
                                        data, rid)

        # The same bytes are the same batch request (hashed only when a key is given).
        idem = _idempotency(key, "events/batch", idempotency_key,
                            hashlib.sha256(raw).hexdigest() if idempotency_key else "")
        committed = await state.commit(Submission(rows, idem, render))
        if committed.conflict:
            raise ApiError(409, "Idempotency-Key was already used with a different request",
                           [{"field": "Idempotency-Key", "issue": "reused with a different body"}])
        return ok(request, committed.status, committed.body,
                  {"Idempotent-Replayed": "true"} if committed.replayed else None)

    # ---- status for workflow conditions ----------------------------------------------------------
    async def status_of(request: Request, key: ApiKey, column: str, value: str) -> Response:
        events = await asyncio.to_thread(state.store.events_for, key.tenant_id, column, value)
        data = {"messageId": value if column == "message_id" else None,
                "workflowExecutionId": value if column == "workflow_execution_id" else None}
        data |= summarize_status(events, state.scanners)
        return ok(request, 200, success_body(200, "Event status", data, request_id(request)))

    @app.get(f"{PREFIX}/events/status", tags=["events"], summary="Has a message been opened, clicked or replied to?",
             description="For workflow conditions: answers from events ingested through this API, within a second "
                         "of their ingest, without waiting for a pipeline run. Opens and clicks are human only.",
             responses={200: {"model": StatusEnvelope}, **ERRORS})
    async def message_status(
        request: Request, messageId: Annotated[str, Query(min_length=1, max_length=128)], key: ApiKey = analytics_read,
    ) -> Response:
        return await status_of(request, key, "message_id", messageId)

    @app.get(f"{PREFIX}/workflow-executions/{{workflowExecutionId}}/status", tags=["events"],
             summary="Has any message of a workflow execution been opened, clicked or replied to?",
             responses={200: {"model": StatusEnvelope}, **ERRORS})
    async def execution_status(
        request: Request, workflowExecutionId: Annotated[str, Path(min_length=1, max_length=128)],
        key: ApiKey = analytics_read,
    ) -> Response:
        return await status_of(request, key, "workflow_execution_id", workflowExecutionId)

    # ---- tracking: open pixel and click redirect ---------------------------------------------------
    async def land_tracked(token: str, payload: dict[str, Any], body: dict[str, Any], request: Request) -> None:
        body = {k: v for k, v in body.items() if v is not None}
        agent = request.headers.get("user-agent", "")[:1024]
        client = client_of(request.scope)
        # The same link from the same client within LEADRON_TRACKING_DEDUP_SECONDS lands once.
        body |= {"eventId": tracking.repeat_id(token, f"{client}|{agent}", settings.tracking_dedup_s),
                 "leadId": payload.get("l"), "messageId": payload.get("m"), "workflowExecutionId": payload.get("x")}
        if agent:
            body["userAgent"] = agent
        if client:
            body["ip"] = client
        try:
            event = ApiEventIn.model_validate_json(orjson.dumps({k: v for k, v in body.items() if v is not None}))
        except ValidationError as exc:
            raise ApiError(404, "Unknown tracking link", []) from exc
        await state.commit(Submission([encode_event(event, payload["t"], _now(), "tracking", 0)]))

    def tracked(kind: str, token: str, request: Request) -> dict[str, Any]:
        state.clients.limit_anonymous(client_of(request.scope))
        payload = tracking.verify_tracking(state.secret, kind, token)
        if payload is None or not isinstance(payload.get("t"), str) or not isinstance(payload.get("m"), str):
            raise ApiError(404, "Unknown tracking link", [])
        return payload

    @app.get(f"{PREFIX}/track/open/{{token}}", tags=["tracking"], summary="Open pixel (1x1 GIF)",
             responses={200: {"content": {"image/gif": {}}}, 404: {"model": ErrorEnvelope}},
             response_class=Response)
    async def open_pixel(token: str, request: Request) -> Response:
        payload = tracked(tracking.OPEN, token, request)
        await land_tracked(token, payload, {"eventType": "email_open"}, request)
        return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store, max-age=0"})

    @app.get(f"{PREFIX}/track/click/{{token}}", tags=["tracking"], summary="Click redirect",
             responses={302: {"description": "Redirect to the signed URL"}, 404: {"model": ErrorEnvelope}},
             response_class=RedirectResponse, status_code=302)
    async def click_redirect(token: str, request: Request) -> Response:
        payload = tracked(tracking.CLICK, token, request)
        url = payload.get("u")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(404, "Unknown tracking link", [])
        await land_tracked(token, payload, {"eventType": "link_click", "url": url}, request)
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    # ---- provider webhooks ------------------------------------------------------------------------
    async def land_webhook(request: Request, tenant: str, mapped: list[tuple[dict | None, str]]) -> Response:
        rows, positions, skipped, rejected = [], [], [], []
        received = _now()
        for index, (body, reason) in enumerate(mapped):
            if body is None:
                skipped.append({"index": index, "reason": reason})
                continue
            try:
                event = ApiEventIn.model_validate_json(json.dumps(body))
            except ValidationError as exc:
                rejected.append({"index": index, "status": "rejected", "id": body.get("eventId"),
                                 "errors": [{"field": d["field"], "issue": d["issue"]} for d in describe_errors(exc)]})
                continue
            stored = encode_event(event, tenant, received, "webhook", index)
            if issue := state.too_old(stored):
                rejected.append({"index": index, "status": "rejected", "id": stored.event_id, "errors": [issue]})
                continue
            rows.append(stored)
            positions.append(index)
        committed = await state.commit(Submission(rows)) if rows else None
        outcomes = committed.outcomes if committed else []
        counts = Counter(o.status for o in outcomes)
        for index, outcome in zip(positions, outcomes):
            if outcome.status == "conflict":
                rejected.append({"index": index, "status": "rejected", "id": outcome.event_id,
                                 "errors": [{"field": "eventId", "issue": "already used with a different body"}]})
        if rejected:
            log.warning("webhook events rejected request_id=%s: %s", request_id(request), orjson.dumps(rejected).decode())
        data = {"accepted": counts["accepted"], "duplicates": counts["duplicate"], "skipped": skipped,
                "rejected": rejected}
        # 200 even when some were skipped or rejected: a provider would otherwise retry them forever.
        return json_response(200, success_body(200, "Webhook processed", data, request_id(request)))

    def webhook_tenant(provider: str, token: str, request: Request) -> tuple[str, str]:
        """The tenant of a webhook URL and the provider key it registered; 401 for a bad URL or no key."""
        state.clients.limit_anonymous(client_of(request.scope))
        payload = tracking.verify(state.secret, tracking.WEBHOOK, token)
        if payload is None or payload.get("p") != provider or not isinstance(payload.get("t"), str):
            raise ApiError(401, "Invalid webhook URL", [{"field": "token", "issue": "invalid"}])
        verification_key = state.keys.webhook_key(payload["t"], provider)
        if verification_key is None:
            raise ApiError(401, "No webhook verification key is registered for this tenant and provider",
                           [{"field": "token", "issue": "register one with leadron keys webhook-url"}])
        return payload["t"], verification_key

    def refused(exc: webhook_auth.SignatureError) -> ApiError:
        return ApiError(401, "Webhook signature does not verify", [{"field": exc.field, "issue": exc.issue}])

    async def json_body(request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "Malformed JSON body", [{"field": "body", "issue": str(exc)}]) from None

    @app.post(f"{PREFIX}/webhooks/sendgrid/{{token}}", tags=["webhooks"], summary="SendGrid Event Webhook",
              responses={200: {"model": WebhookEnvelope}, 400: {"model": ErrorEnvelope}, 401: {"model": ErrorEnvelope},
                         413: {"model": ErrorEnvelope}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"type": "array", "items": {"type": "object"}}}}}})
    async def sendgrid_webhook(token: str, request: Request) -> Response:
        tenant, public_key = webhook_tenant("sendgrid", token, request)
        raw = await request.body()
        try:  # the raw bytes, before parsing: what SendGrid signed
            webhook_auth.verify_sendgrid(public_key, dict(request.headers), raw, settings.webhook_tolerance_s)
        except webhook_auth.SignatureError as exc:
            raise refused(exc) from None
        return await land_webhook(request, tenant, webhooks.sendgrid_events(await json_body(request)))

    @app.post(f"{PREFIX}/webhooks/mailgun/{{token}}", tags=["webhooks"], summary="Mailgun webhook",
              responses={200: {"model": WebhookEnvelope}, 400: {"model": ErrorEnvelope}, 401: {"model": ErrorEnvelope},
                         413: {"model": ErrorEnvelope}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"type": "object"}}}}})
    async def mailgun_webhook(token: str, request: Request) -> Response:
        tenant, signing_key = webhook_tenant("mailgun", token, request)
        payload = await json_body(request)
        try:
            await asyncio.to_thread(webhook_auth.verify_mailgun, signing_key,
                                    payload.get("signature") if isinstance(payload, dict) else None,
                                    settings.webhook_tolerance_s, state.replay)
        except webhook_auth.SignatureError as exc:
            raise refused(exc) from None
        return await land_webhook(request, tenant, [webhooks.mailgun_event(payload)])

    @app.get("/health", tags=["ops"], summary="Liveness", include_in_schema=False)
    async def health() -> Response:
        return json_response(200, orjson.dumps({"status": "ok"}))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ApiEventIn, BatchIn):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
    # Outermost first: request ids and the body limit, then the single-event fast path, then FastAPI.
    app.add_middleware(SingleEventFastPath, api=state)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.api_max_body_bytes)
    return app


class SingleEventFastPath:
    """POST /v1/analytics/events handled below FastAPI's routing and dependency layers.

    The hot path of ingestion (measured: FastAPI's layers cost more than validation and the
    commit together). Same code as the declared route (`Api.ingest_one`), same envelope.
    """

    def __init__(self, app, api: Api):
        self.app, self.api = app, api

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != f"{PREFIX}/events":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = scope.get("state", {}).get("request_id", "")
        extra: dict[str, str] = {}
        try:
            key, extra = self.api.authenticate(headers.get("x-api-key"), "events:write", client_of(scope))
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            status, body, more = await self.api.ingest_one(
                key, headers.get("content-type", ""), b"".join(chunks), headers.get("idempotency-key"), rid)
            extra |= more
        except ApiError as exc:
            extra |= exc.headers or {}
            status, body = exc.status, error_body(exc.status, exc.message, exc.details, rid, exc.code)
        except Exception:
            log.exception("unhandled error request_id=%s", rid)
            status, body = 500, error_body(500, "Internal error", [], rid)
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


def client_of(scope) -> str:
    """The client's address (the peer of the TCP connection; behind a proxy, run uvicorn with its
    --forwarded-allow-ips so this is the real client)."""
    client = scope.get("client")
    return client[0] if client else ""


def validate_batch(raw: bytes) -> tuple[list[tuple[int, ApiEventIn]], dict[int, dict[str, Any]]]:
    """(valid events with their index, rejected results by index) of a batch body.

    The whole batch is validated in one pydantic call; only when that fails are the
    events validated one by one, to tell the valid ones from the rejected ones.
    """
    try:
        return list(enumerate(ValidBatchIn.model_validate_json(raw).events)), {}
    except ValidationError:
        pass
    try:
        batch = BatchIn.model_validate_json(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    items, results = [], {}
    for index, item in enumerate(batch.events):
        try:
            # json (not orjson): the slow path must also take what orjson cannot encode (e.g. huge integers).
            items.append((index, ApiEventIn.model_validate_json(json.dumps(item))))
        except ValidationError as exc:
            results[index] = {"index": index, "status": "rejected", "id": None,
                              "errors": [{"field": d["field"], "issue": d["issue"]} for d in describe_errors(exc)]}
    return items, results


def summarize_status(events: list[dict[str, Any]], scanners: list[str]) -> dict[str, Any]:
    """Human opens and clicks (METRICS.md bot rules), replies and bounces of the given events."""
    sent_at: dict[str, datetime] = {}
    for e in events:
        if e["event_type"] == "email_sent" and e["message_id"]:
            ts = e["occurred_at"]
            sent_at[e["message_id"]] = min(ts, sent_at.get(e["message_id"], ts))

    def human(e: dict[str, Any]) -> bool:
        if e["is_bot"]:
            return False
        agent = (e["user_agent"] or "").lower()
        if any(p in agent for p in scanners):
            return False
        sent = sent_at.get(e["message_id"])
        return not (sent is not None and sent <= e["occurred_at"] < sent + BOT_WINDOW)

    def first(kind: str, only_human: bool = False) -> str | None:
        times = [e["occurred_at"] for e in events if e["event_type"] == kind and (not only_human or human(e))]
        return iso_ms(min(times)) if times else None

    opened, clicked = first("email_open", True), first("link_click", True)
    replied, bounced = first("email_reply"), first("email_bounce")
    return {"sent": bool(sent_at), "opened": opened is not None, "clicked": clicked is not None,
            "replied": replied is not None, "bounced": bounced is not None, "firstOpenedAt": opened,
            "firstClickedAt": clicked, "firstRepliedAt": replied, "bouncedAt": bounced,
            "events": dict(Counter(e["event_type"] for e in events))}
