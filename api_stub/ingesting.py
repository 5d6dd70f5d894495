"""Ingestion: validate events, hand them to the log's writer, answer with the envelope.

Shared by the ingest router and the single-event fast path (fast_path.py): one code path for
POST /events whichever layer serves it. Handlers validate bytes with pydantic directly (a single body
as one event, a batch body as a batch).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime
from operator import itemgetter
from typing import Annotated, Any

from fastapi import Header
from pydantic import ValidationError

from api_stub.envelope import ApiError, error_body, success_body
from api_stub.ingest_log.records import IdempotencyRecord, Outcome, StoredEvent, Submission, encode_event, encode_events
from api_stub.schemas import ApiEventIn, BatchIn, ValidBatchIn
from api_stub.state import ApiState
from leadron.contract import describe_errors
from leadron.keystore import ApiKey
from leadron.reads.shaping import iso_ms

IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")  # visible ASCII, as in the OpenAPI document
IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY.pattern,
        description="Retry safely: the same key and body replay the first response; another body gets 409.",
    ),
]


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


REUSED_EVENT_ID = {"field": "eventId", "issue": "already used with a different body"}


def rejected(index: int, event_id: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    """One event's result in a batch or webhook answer when it is not stored."""
    return {"index": index, "status": "rejected", "id": event_id, "errors": errors}


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": d["field"], "issue": d["issue"]} for d in describe_errors(exc)]


def validation_error(exc: ValidationError) -> ApiError:
    details = describe_errors(exc)
    if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
        return ApiError(400, "Malformed JSON body", [{"field": "body", "issue": d["issue"]} for d in details][:1])
    return ApiError(422, "Validation failed", details)


def require_json(content_type: str) -> None:
    if "json" not in content_type.split(";")[0]:
        raise ApiError(
            415,
            "Content-Type must be application/json",
            [{"field": "Content-Type", "issue": "expected application/json"}],
        )


def idempotency(key: ApiKey, route: str, header: str | None, request_hash: str) -> IdempotencyRecord | None:
    if header is None:
        return None
    if not IDEMPOTENCY_KEY.match(header):
        raise ApiError(
            422, "Invalid Idempotency-Key", [{"field": "Idempotency-Key", "issue": "1-255 visible ASCII characters"}]
        )
    return IdempotencyRecord(key.tenant_id, route, header, request_hash)


def reused_key() -> ApiError:
    return ApiError(
        409,
        "Idempotency-Key was already used with a different request",
        [{"field": "Idempotency-Key", "issue": "reused with a different body"}],
    )


def other_tenant(field: str) -> ApiError:
    return ApiError(
        403,
        "tenantId does not match the API key's tenant",
        [{"field": field, "issue": "must be the API key's tenant or omitted"}],
    )


def _event_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["event_id"],
        "tenantId": row["tenant_id"],
        "type": row["event_type"],
        "leadId": row["lead_id"],
        "messageId": row["message_id"],
        "workflowExecutionId": row["workflow_execution_id"],
        "timestamp": iso_ms(row["occurred_at"]),
    }


def _request_hash(event: ApiEventIn) -> str:
    # The validated event, not its bytes: a retry that re-serialises the same event is the same request.
    return hashlib.sha256(event.model_dump_json(exclude={"tenantId"}).encode()).hexdigest()


async def ingest_one(
    api: ApiState, key: ApiKey, content_type: str, raw: bytes, idempotency_key: str | None, rid: str
) -> tuple[int, bytes, dict[str, str]]:
    """POST /v1/analytics/events after authentication: (status, body, extra headers)."""
    require_json(content_type)
    try:
        event = ApiEventIn.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    if event.tenantId is not None and event.tenantId != key.tenant_id:
        raise other_tenant("tenantId")
    stored = encode_event(event, key.tenant_id, now(), "api", 0)
    if issue := api.too_old(stored):
        raise ApiError(422, "Validation failed", [issue])

    def render(outcomes: list[Outcome]) -> tuple[int, bytes]:
        outcome = outcomes[0]
        if outcome.status == "conflict":
            return 409, error_body(
                409,
                "eventId was already used for a different event",
                [REUSED_EVENT_ID],
                rid,
            )
        return 201, success_body(201, "Event ingested", _event_data(outcome.row), rid)

    idem = idempotency(key, "events", idempotency_key, _request_hash(event) if idempotency_key else "")
    committed = await api.commit(Submission([stored], idem, render))
    if committed.conflict:
        raise reused_key()
    replayed = committed.replayed or (committed.outcomes and committed.outcomes[0].status == "duplicate")
    return committed.status, committed.body, {"Idempotent-Replayed": "true"} if replayed else {}


def validate_batch(raw: bytes) -> tuple[list[tuple[int, ApiEventIn]], dict[int, dict[str, Any]]]:
    """(valid events with their index, rejected results by index) of a batch body.

    The whole batch is validated in one pydantic call; only when that fails are the
    events validated one by one, to tell the valid ones from the rejected ones.
    """
    try:
        return list(enumerate(ValidBatchIn.validate_json(raw))), {}
    except ValueError:  # pydantic's ValidationError is one too
        pass
    try:
        batch = BatchIn.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    items, results = [], {}
    for index, item in enumerate(batch.events):
        try:
            # json (not orjson): the slow path must also take what orjson cannot encode (e.g. huge integers).
            items.append((index, ApiEventIn.model_validate_json(json.dumps(item))))
        except ValidationError as exc:
            results[index] = rejected(index, None, field_errors(exc))
    return items, results


async def ingest_batch(
    api: ApiState, key: ApiKey, raw: bytes, idempotency_key: str | None, rid: str, rate_headers: dict
) -> tuple[int, bytes, dict[str, str] | None]:
    """POST /v1/analytics/events/batch after authentication: (status, body, extra headers)."""
    received = now()
    items, results = validate_batch(raw)
    total = len(items) + len(results)
    if total > 1:  # a batch costs its events (the dependency took one)
        rate_headers.update(api.charge(key, total - 1))
    rows: list[StoredEvent] = []
    positions: list[int] = []  # index in the batch of each stored event
    for index, event in items:
        if event.tenantId is not None and event.tenantId != key.tenant_id:
            raise other_tenant(f"events.{index}.tenantId")
    for (index, _), stored in zip(items, encode_events(items, key.tenant_id, received, "api")):
        if issue := api.too_old(stored):
            results[index] = rejected(index, stored.event_id, [issue])
            continue
        rows.append(stored)
        positions.append(index)

    def render(outcomes: list[Outcome]) -> tuple[int, bytes]:
        items = [  # per event of every batch: kept lean
            rejected(index, event.event_id, [REUSED_EVENT_ID])
            if status == "conflict"
            else {"index": index, "status": status, "id": event.event_id, "errors": []}
            for index, (status, event) in zip(positions, outcomes)
        ]
        if results:
            items = sorted([*items, *results.values()], key=itemgetter("index"))
        counts = Counter(i["status"] for i in items)
        if counts["rejected"] == len(items):
            details = [
                {"field": f"events.{i['index']}.{e['field']}", "issue": e["issue"]} for i in items for e in i["errors"]
            ]
            return 422, error_body(422, "No event of the batch was valid", details, rid)
        status = 201 if counts["rejected"] == 0 else 207
        data = {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": items,
        }
        return status, success_body(
            status,
            f"Batch processed: {counts['accepted']} accepted, "
            f"{counts['duplicate']} duplicate, {counts['rejected']} rejected",
            data,
            rid,
        )

    # The same bytes are the same batch request (hashed only when a key is given).
    idem = idempotency(key, "events/batch", idempotency_key, hashlib.sha256(raw).hexdigest() if idempotency_key else "")
    committed = await api.commit(Submission(rows, idem, render))
    if committed.conflict:
        raise reused_key()
    return committed.status, committed.body, {"Idempotent-Replayed": "true"} if committed.replayed else None


def land_events(
    api: ApiState,
    tenant: str,
    bodies: list[tuple[int, dict]],
    source: str,
) -> tuple[list[StoredEvent], list[int], list[dict[str, Any]]]:
    """Validate already-mapped event bodies (webhooks): (stored events, their indexes, rejected results)."""
    received = now()
    rows, positions, refused = [], [], []
    for index, body in bodies:
        try:
            event = ApiEventIn.model_validate_json(json.dumps(body))
        except ValidationError as exc:
            refused.append(rejected(index, body.get("eventId"), field_errors(exc)))
            continue
        stored = encode_event(event, tenant, received, source, index)
        if issue := api.too_old(stored):
            refused.append(rejected(index, stored.event_id, [issue]))
            continue
        rows.append(stored)
        positions.append(index)
    return rows, positions, refused
