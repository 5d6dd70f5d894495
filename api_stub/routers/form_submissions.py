"""Form submissions: the list and the per-form summary (the published copy)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, State
from api_stub.reading import FromDay, PageNo, PageSize, ToDay, day_range, paged, respond
from api_stub.routers.common import PREFIX, RANGE_RULES, READ_ERRORS, unstated
from api_stub.schemas import DataEnvelope, PageEnvelope
from leadron.reads import leads

LeadId = Annotated[str, Path(min_length=1, max_length=128)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=128)]

router = APIRouter(prefix=PREFIX, tags=["form submissions"])


@router.get(
    "/form-submissions",
    summary="Form submissions, newest first",
    responses={200: {"model": PageEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def form_submissions(
    request: Request,
    api: State,
    key: AnalyticsRead,
    formId: OptionalId = None,
    leadId: OptionalId = None,
    start: FromDay = None,
    end: ToDay = None,
    page: PageNo = 1,
    limit: PageSize = 50,
) -> Response:
    first, last = day_range(start, end)
    (rows, total), fresh = await api.reader.read(
        leads.form_submissions, key.tenant_id, first, last, formId, leadId, (page - 1) * limit, limit
    )
    return paged(request, "Form submissions", rows, total, page, limit, fresh)


@router.get(
    "/form-submissions/summary",
    summary="Per form: submissions, unique leads, leads converted afterwards",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def form_submission_summary(
    request: Request,
    api: State,
    key: AnalyticsRead,
    formId: OptionalId = None,
    start: FromDay = None,
    end: ToDay = None,
) -> Response:
    first, last = day_range(start, end)
    rows, fresh = await api.reader.read(leads.form_summary, key.tenant_id, first, last, formId)
    return respond(
        request, "Form submission summary", {"from": first.isoformat(), "to": last.isoformat(), "forms": rows}, fresh
    )
