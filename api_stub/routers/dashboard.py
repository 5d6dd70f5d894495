"""Dashboard & KPIs: KPIs (with today's unpublished activity), funnels, cohorts, team performance."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from api_stub import realtime
from api_stub.deps import AnalyticsRead, HeavyRead, State
from api_stub.envelope import ApiError
from api_stub.reading import FromDay, ToDay, day_range, respond, today
from api_stub.routers.common import PREFIX, RANGE_RULES, READ_ERRORS, unstated
from api_stub.schemas import DataEnvelope, FunnelIn
from api_stub.state import ApiState
from leadron.contract import EVENT_TYPES
from leadron.funnel import FunnelSpec, FunnelStep
from leadron.keystore import ApiKey
from leadron.publish import publication_record
from leadron.reads import dashboard

LeadId = Annotated[str, Path(min_length=1, max_length=128)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=128)]

router = APIRouter(prefix=PREFIX, tags=["dashboard"])
_TYPE = "(" + "|".join(EVENT_TYPES) + ")"
STEPS_PATTERN = f"^{_TYPE}(,{_TYPE}){{1,7}}$"  # 2 to 8 comma-separated event types


@router.get(
    "/dashboard/kpis",
    summary="Email KPIs by send day",
    description="Counts and rates (ratios of summed counts, METRICS.md) grouped by day, week, month, "
    "workflow, step, rep or team (weekly); totals of the range; with "
    "`compareTo=previous_period` the same totals for the period just before. When the range "
    "includes today, `today` adds the events that arrived since the last publication.",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def kpis(
    request: Request,
    api: State,
    key: AnalyticsRead,
    start: FromDay = None,
    end: ToDay = None,
    groupBy: Literal["day", "week", "month", "workflow", "step", "rep", "team"] = "day",
    compareTo: Literal["previous_period"] | None = None,
) -> Response:
    first, last = day_range(start, end)
    day = today()

    def work(cur):
        data = dashboard.kpis(cur, key.tenant_id, first, last, groupBy, compareTo is not None)
        if first <= day <= last:
            mark = publication_record(cur)[2]  # the version this cursor reads, not whatever is newest now
            unloaded = realtime.unloaded_events(
                api.settings, key.tenant_id, day, datetime.fromisoformat(mark) if mark else None
            )
            data["today"] = dashboard.today_activity(cur, key.tenant_id, day, unloaded)
        return data

    data, fresh = await api.reader.read(work)
    return respond(request, "KPIs", data, fresh)


async def run_funnel(
    request: Request, api: ApiState, key: ApiKey, body: FunnelIn
) -> Response:  # key: charged as a heavy read
    first, last = day_range(body.from_, body.to, 90)
    spec = FunnelSpec(
        steps=[FunnelStep(event_type=s.eventType, url_contains=s.urlContains, form_id=s.formId) for s in body.steps],
        window_seconds=body.windowSeconds,
        entity=body.entity,
        tenant_id=key.tenant_id,
        start=datetime.combine(first, time()),
        end=datetime.combine(last + timedelta(days=1), time()),
        breakdowns=tuple(dict.fromkeys(body.breakdown)),
        human_only=body.humanOnly,
    )
    data, fresh = await api.reader.read(dashboard.funnel, spec, heavy=True)
    return respond(request, "Funnel", {"from": first.isoformat(), "to": last.isoformat(), **data}, fresh)


@router.get(
    "/dashboard/funnel",
    summary="A funnel from query parameters",
    description="`steps` is a comma-separated list of event types (default: the email funnel "
    "email_sent,email_open,link_click,email_reply); window in days; entry days from/to.",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def funnel_get(
    request: Request,
    api: State,
    key: HeavyRead,
    steps: Annotated[
        str, Query(max_length=200, pattern=STEPS_PATTERN)
    ] = "email_sent,email_open,link_click,email_reply",
    windowDays: Annotated[int, Query(ge=1, le=180)] = 7,
    start: FromDay = None,
    end: ToDay = None,
    breakdown: Annotated[
        Literal["workflow", "step", "rep", "team", "lead_source", "cohort_week"] | None, Query()
    ] = None,
    entity: Literal["lead", "message"] = "lead",
) -> Response:
    try:
        body = FunnelIn.model_validate(
            {
                "steps": [{"eventType": s.strip()} for s in steps.split(",")],
                "windowSeconds": windowDays * 86400,
                "from": start,
                "to": end,
                "breakdown": [breakdown] if breakdown else [],
                "entity": entity,
            }
        )
    except ValidationError as exc:
        raise ApiError(
            422, "Validation failed", [{"field": "steps", "issue": e["msg"]} for e in exc.errors()][:3]
        ) from None
    return await run_funnel(request, api, key, body)


@router.post(
    "/dashboard/funnel",
    summary="A custom funnel",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def funnel_post(request: Request, api: State, body: Annotated[FunnelIn, Body()], key: HeavyRead) -> Response:
    return await run_funnel(request, api, key, body)


@router.get(
    "/dashboard/cohorts",
    summary="Weekly cohorts: retention or conversion",
    description="Cohorts by the week (Monday) of each lead's first send, for cohort weeks in the range "
    "(default: the last 12 weeks); per week offset the active (retention) or converted "
    "(conversion) leads and their share of the cohort. Only fully elapsed weeks.",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def cohorts(
    request: Request,
    api: State,
    key: AnalyticsRead,
    start: FromDay = None,
    end: ToDay = None,
    metric: Literal["retention", "conversion"] = "retention",
) -> Response:
    first, last = day_range(start, end, 84)
    rows, fresh = await api.reader.read(dashboard.cohorts, key.tenant_id, first, last, metric)
    return respond(
        request,
        "Cohorts",
        {"from": first.isoformat(), "to": last.isoformat(), "metric": metric, "cohorts": rows},
        fresh,
    )


@router.get(
    "/dashboard/team-performance",
    summary="Per rep or team",
    description="Email counts and rates per team or rep (the rep's team at the time of the activity), "
    "over the weeks (Monday) starting in the range, with touches (sends) per reply.",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
    openapi_extra=unstated(*RANGE_RULES),
)
async def team_performance(
    request: Request,
    api: State,
    key: AnalyticsRead,
    start: FromDay = None,
    end: ToDay = None,
    teamId: OptionalId = None,
    groupBy: Literal["rep", "team"] = "team",
) -> Response:
    first, last = day_range(start, end, 84)
    data, fresh = await api.reader.read(dashboard.team_performance, key.tenant_id, first, last, groupBy, teamId)
    return respond(request, "Team performance", data, fresh)
