"""Page visits: the list and the most visited pages (the published copy)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, State
from api_stub.reading import FromDay, PageNo, PageSize, ToDay, day_range, paged, respond
from api_stub.routers.common import PREFIX, RANGE_RULES, READ_ERRORS, unstated
from api_stub.schemas import ListEnvelope, PageEnvelope
from leadron.reads import leads

LeadId = Annotated[str, Path(min_length=1, max_length=128)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=128)]

router = APIRouter(prefix=PREFIX, tags=["page visits"])


@router.get(
    "/page-visits",
    summary="Page visits, newest first",
    responses={200: {"model": PageEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def page_visits(
    request: Request,
    api: State,
    key: AnalyticsRead,
    url: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
    leadId: OptionalId = None,
    start: FromDay = None,
    end: ToDay = None,
    page: PageNo = 1,
    limit: PageSize = 50,
) -> Response:
    first, last = day_range(start, end)
    (rows, total), fresh = await api.reader.read(
        leads.page_visits, key.tenant_id, first, last, url, leadId, (page - 1) * limit, limit
    )
    return paged(request, "Page visits", rows, total, page, limit, fresh)


@router.get(
    "/page-visits/top-pages",
    summary="Most visited pages",
    responses={200: {"model": ListEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def top_pages(
    request: Request,
    api: State,
    key: AnalyticsRead,
    start: FromDay = None,
    end: ToDay = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    first, last = day_range(start, end)
    rows, fresh = await api.reader.read(leads.top_pages, key.tenant_id, first, last, limit)
    return respond(request, "Top pages", rows, fresh)
