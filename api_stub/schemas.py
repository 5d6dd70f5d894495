"""Request and response shapes for the OpenAPI document (the handlers write bytes directly)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api_stub.reading import Day
from leadron.contract import EventIn, EventType, Id, apply_timestamp_rule
from leadron.exports import DATASETS

MAX_BATCH = 1000


class ApiEventIn(EventIn):
    """The seed's body plus optional fields. `tenantId`, if sent, must be the API key's tenant."""

    tenantId: Id | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_BATCH, description="Up to 1,000 events (each the body of POST /events)"
    )


class BatchEventIn(ApiEventIn):
    """ApiEventIn with the timestamp parsed but not yet normalised: `apply_timestamp_rule` does that for the
    whole batch at once (ValidBatchIn.validate_json)."""

    timestamp: datetime | None = None


class ValidBatchIn(BaseModel):
    """The fast path: the whole batch validated in one call; used when every event is valid."""

    model_config = ConfigDict(extra="forbid")
    events: list[BatchEventIn] = Field(min_length=1, max_length=MAX_BATCH)

    @classmethod
    def validate_json(cls, raw: bytes) -> list[ApiEventIn]:
        """The batch's events, every rule of ApiEventIn applied (ValidationError or ValueError if any fails)."""
        events = cls.model_validate_json(raw).events
        apply_timestamp_rule(events)
        return events


class Meta(BaseModel):
    timestamp: str
    version: Literal["v1"]
    requestId: str | None = None


class ErrorDetail(BaseModel):
    field: str
    issue: str


class ErrorInfo(BaseModel):
    code: str
    details: list[ErrorDetail]


class ErrorEnvelope(BaseModel):
    success: Literal[False]
    status: int
    message: str
    error: ErrorInfo
    meta: Meta


class EventData(BaseModel):
    id: str
    tenantId: str
    type: str
    leadId: str | None
    messageId: str | None
    workflowExecutionId: str | None
    timestamp: str = Field(description="ISO 8601 UTC with milliseconds, e.g. 2026-02-09T10:30:00.000Z")


class EventEnvelope(BaseModel):
    success: Literal[True]
    status: int
    message: str
    data: EventData
    meta: Meta


class BatchItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = None
    errors: list[ErrorDetail] = []


class BatchData(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


class BatchEnvelope(BaseModel):
    success: Literal[True]
    status: int
    message: str
    data: BatchData
    meta: Meta


class StatusData(BaseModel):
    messageId: str | None = None
    workflowExecutionId: str | None = None
    sent: bool
    opened: bool
    clicked: bool
    replied: bool
    bounced: bool
    firstOpenedAt: str | None
    firstClickedAt: str | None
    firstRepliedAt: str | None
    bouncedAt: str | None
    events: dict[str, int]


class StatusEnvelope(BaseModel):
    success: Literal[True]
    status: int
    message: str
    data: StatusData
    meta: Meta


class WebhookSkip(BaseModel):
    index: int
    reason: str


class WebhookData(BaseModel):
    accepted: int
    duplicates: int
    skipped: list[WebhookSkip]
    rejected: list[BatchItemResult]


class WebhookEnvelope(BaseModel):
    success: Literal[True]
    status: int
    message: str
    data: WebhookData
    meta: Meta


# ---- read endpoints -------------------------------------------------------------------------------
class Pagination(BaseModel):
    page: int
    limit: int
    total: int
    totalPages: int
    hasNext: bool
    hasPrev: bool


class DataFreshness(BaseModel):
    publishedAt: str
    version: str
    dataFreshAsOf: str | None = Field(description="Newest event receipt time in the published data (UTC)")


class ReadMeta(Meta):
    dataFreshness: DataFreshness | None = None


class DataEnvelope(BaseModel):
    success: Literal[True]
    status: int
    message: str
    data: dict[str, Any]
    meta: ReadMeta


class ListEnvelope(BaseModel):
    success: Literal[True]
    status: int
    message: str
    data: list[dict[str, Any]]
    meta: ReadMeta


class PageEnvelope(ListEnvelope):
    pagination: Pagination


class FunnelStepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    eventType: EventType
    urlContains: str | None = Field(default=None, min_length=1, max_length=512)
    formId: str | None = Field(default=None, min_length=1, max_length=128)


Breakdown = Literal["workflow", "step", "rep", "team", "lead_source", "cohort_week"]


class FunnelIn(BaseModel):
    """A custom funnel (METRICS.md): ordered steps, a conversion window, entry days, breakdowns."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    steps: list[FunnelStepIn] = Field(min_length=2, max_length=8)
    windowSeconds: StrictInt = Field(default=7 * 86400, ge=60, le=180 * 86400)
    from_: Day | None = Field(default=None, alias="from", description="First UTC day of entry (inclusive)")
    to: Day | None = Field(default=None, description="Last UTC day of entry (inclusive)")
    breakdown: list[Breakdown] = Field(default_factory=list, max_length=2)
    entity: Literal["lead", "message"] = "lead"
    humanOnly: StrictBool = True


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    dataset: Literal[DATASETS] = Field(description="A published mart, fct_events or raw_events")
    format: Literal["csv", "parquet", "jsonl", "xlsx"] = "csv"
    from_: Day | None = Field(default=None, alias="from", description="First UTC day (inclusive)")
    to: Day | None = Field(default=None, description="Last UTC day (inclusive)")
    workflowId: str | None = Field(default=None, min_length=1, max_length=128)
    userId: str | None = Field(default=None, min_length=1, max_length=128)
    teamId: str | None = Field(default=None, min_length=1, max_length=128)
