"""What the API log stores: an event as one JSON line with its tenant, receipt time, source and position;
a request's submission to the writer and what its commit answered."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from api_stub.ingest_log.status_index import tenant_refs_blob
from leadron.contract import EventIn, event_id_for

_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)
_META = ("_t", "_r", "_s", "_p")  # tenant, received (epoch µs), source, position: added to each stored line


def micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICRO


class StoredEvent(NamedTuple):
    """A validated event as the log stores it: its index keys and its JSON line.

    A named tuple: built for every event of every request, where a frozen dataclass costs 4x as much."""

    tenant_id: str
    event_id: str
    event_type: str
    lead_id: str | None
    message_id: str | None
    workflow_execution_id: str | None
    occurred_at: datetime
    line: bytes

    @property
    def event_date(self) -> date:
        return self.occurred_at.date()

    @property
    def row(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "lead_id": self.lead_id,
            "message_id": self.message_id,
            "workflow_execution_id": self.workflow_execution_id,
            "occurred_at": self.occurred_at,
        }


_NOT_IN_BODY = {"eventId", "tenantId", "properties"}


def encode_events(
    items: list[tuple[int, EventIn]], tenant_id: str, received_at: datetime, source: str
) -> list[StoredEvent]:
    """The stored form of valid events (with their positions in the request): the API's JSON (nulls left
    out) plus tenant and receipt metadata. Runs on every event of every request, hence the shared prefix
    and pydantic's serializer called directly (a third faster than `model_dump_json`)."""
    prefix = b'{"_t":"%s","_r":%d,"_s":"%s","_p":' % (tenant_id.encode(), micros(received_at), source.encode())
    stored = []
    for position, event in items:
        event_id = event_id_for(tenant_id, event)
        body = event.__pydantic_serializer__.to_json(event, exclude_none=True, exclude=_NOT_IN_BODY)
        line = prefix + b'%d,"eventId":"%s"' % (position, event_id.encode())
        if event.properties is not None:  # kept as a JSON string: the landing column is text
            line += b',"properties":' + orjson.dumps(orjson.dumps(event.properties).decode())
        line += b"," + body[1:] if len(body) > 2 else b"}"
        stored.append(
            StoredEvent(
                tenant_id,
                event_id,
                event.eventType.value,
                event.leadId,
                event.messageId,
                event.workflowExecutionId,
                event.timestamp or received_at,
                line,
            )
        )
    return stored


def encode_event(event: EventIn, tenant_id: str, received_at: datetime, source: str, position: int) -> StoredEvent:
    return encode_events([(position, event)], tenant_id, received_at, source)[0]


def decode_line(line: bytes) -> dict[str, Any]:
    """A stored line as a dict of the fields the API answers with (snake_case, occurred_at resolved)."""
    raw = orjson.loads(line)
    received = from_micros(raw["_r"])
    ts = raw.get("timestamp")
    return {
        "tenant_id": raw["_t"],
        "event_id": raw["eventId"],
        "event_type": raw["eventType"],
        "lead_id": raw.get("leadId"),
        "message_id": raw.get("messageId"),
        "workflow_execution_id": raw.get("workflowExecutionId"),
        "occurred_at": datetime.fromisoformat(ts) if ts else received,
        "received_at": received,
        "is_bot": raw.get("isBot"),
        "user_agent": raw.get("userAgent"),
    }


def content_of(line: bytes) -> dict[str, Any]:
    raw = orjson.loads(line)
    for key in _META:
        raw.pop(key, None)
    return raw


class Outcome(NamedTuple):
    """What happened to one event: accepted (new), duplicate (same body seen), conflict (same id, other body).

    `event` is the stored event the answer is about (the original one for duplicates and conflicts).
    """

    status: str
    event: StoredEvent

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def row(self) -> dict[str, Any]:
        return self.event.row


def decoded(line: bytes) -> StoredEvent:
    d = decode_line(line)
    return StoredEvent(
        d["tenant_id"],
        d["event_id"],
        d["event_type"],
        d["lead_id"],
        d["message_id"],
        d["workflow_execution_id"],
        d["occurred_at"],
        line,
    )


@dataclass
class IdempotencyRecord:
    tenant_id: str
    route: str
    key: str
    request_hash: str


@dataclass
class Submission:
    """One request's events. The blobs the commit writes are built here, in the request's thread."""

    events: list[StoredEvent]
    idempotency: IdempotencyRecord | None = None
    render: Callable[[list[Outcome]], tuple[int, bytes]] | None = None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    def __post_init__(self) -> None:
        self.lines = b"\n".join(e.line for e in self.events)
        self.status_refs = status_refs_blob(self.events)
        self.tenant_id = self.events[0].tenant_id if self.events else ""
        if any(e.tenant_id != self.tenant_id for e in self.events):
            raise ValueError("a submission holds the events of one tenant")  # one tenant per request, by its key
        self.event_ids = orjson.dumps([e.event_id for e in self.events])


def status_refs_blob(events: list[StoredEvent]) -> bytes:
    """The refs (status_index.event_ref) of one tenant's events that have a message or execution id: what
    `StatusIndex` indexes."""
    if not events:
        return b""
    return tenant_refs_blob(events[0].tenant_id, [(e.message_id, e.workflow_execution_id) for e in events])


@dataclass(frozen=True)
class Committed:
    """What the commit decided. `outcomes` None: every event was new (the common case, left unbuilt)."""

    outcomes: list[Outcome] | None
    status: int | None = None
    body: bytes | None = None
    replayed: bool = False
    conflict: bool = False

    def finish(self, sub: Submission) -> Committed:
        """Outcomes built and the response rendered, outside the commit (in the request's thread)."""
        done = self.outcomes is not None and (self.body is not None or sub.render is None)
        if self.conflict or self.replayed or done:
            return self  # nothing left to do: a replay, a refusal, or finished inside the commit
        outcomes = self.outcomes if self.outcomes is not None else [Outcome("accepted", e) for e in sub.events]
        if sub.render is None or self.body is not None:
            return Committed(outcomes, self.status, self.body)
        return Committed(outcomes, *sub.render(outcomes))
