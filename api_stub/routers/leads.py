"""Lead engagement: a lead's counts, score and tier, and its timeline (the published copy)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, State
from api_stub.reading import PageNo, PageSize, not_found, paged, respond
from api_stub.routers.common import PREFIX, READ_ERRORS
from api_stub.schemas import DataEnvelope, PageEnvelope
from leadron.contract import EventType
from leadron.reads import leads

LeadId = Annotated[str, Path(min_length=1, max_length=128)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=128)]

router = APIRouter(prefix=PREFIX, tags=["lead engagement"])


@router.get(
    "/leads/{leadId}/engagement",
    summary="A lead's engagement",
    description="Counts by event type (human), first and last activity, engagement score and tier "
    "(mart_lead_engagement), and the lead score when one is published.",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
)
async def lead_engagement(request: Request, api: State, leadId: LeadId, key: AnalyticsRead) -> Response:
    data, fresh = await api.reader.read(leads.engagement, key.tenant_id, leadId)
    if data is None:
        raise not_found("Lead", "leadId")
    return respond(request, "Lead engagement", data, fresh)


@router.get(
    "/leads/{leadId}/timeline",
    summary="A lead's events, newest first",
    responses={200: {"model": PageEnvelope}, **READ_ERRORS},
)
async def lead_timeline(
    request: Request,
    api: State,
    leadId: LeadId,
    key: AnalyticsRead,
    eventType: Annotated[EventType | None, Query()] = None,
    page: PageNo = 1,
    limit: PageSize = 50,
) -> Response:
    def work(cur):
        if not leads.lead_exists(cur, key.tenant_id, leadId):
            return None
        return leads.timeline(
            cur, key.tenant_id, leadId, eventType.value if eventType else None, (page - 1) * limit, limit
        )

    result, fresh = await api.reader.read(work)
    if result is None:
        raise not_found("Lead", "leadId")
    return paged(request, "Lead timeline", result[0], result[1], page, limit, fresh)
