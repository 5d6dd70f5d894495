"""Read endpoints: lead engagement, form submissions, page visits, dashboard and predictive.

All read the published copy (api_stub/published.py) in a worker thread and say how fresh it is
(`meta.dataFreshness`). Ranges are UTC days, `from` and `to` inclusive.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import Body, FastAPI, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from api_stub import dashboard, leads, realtime
from leadron.contract import EventType
from api_stub.envelope import ApiError
from api_stub.reading import FromDay, PageNo, PageSize, ToDay, day_range, not_found, paged, respond, shape, today
from api_stub.schemas import DataEnvelope, ErrorEnvelope, FunnelIn, ListEnvelope, PageEnvelope
from leadron.funnel import FunnelSpec, FunnelStep
from leadron.publish import publication_record

PREFIX = "/v1/analytics"
READ_ERRORS = {code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 422, 429, 503)}
LeadId = Annotated[str, Path(min_length=1, max_length=128)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=128)]


# What a key sees of the model card: no figure computed over rows (the held-back evaluation, row counts,
# positive rate, the promotion reason's numbers pool every tenant's leads; the operator sees them in Dagster).
CARD_FIELDS = ("model_version", "trained_at", "algorithm", "label", "features", "hyperparameters")
CARD_WINDOW = ("first_snapshot", "last_labelled_snapshot", "held_back_from")


def register(app: FastAPI, api, analytics_read, heavy_read) -> None:
    read = api.reader.read

    # ---- lead engagement ---------------------------------------------------------------------------
    @app.get(f"{PREFIX}/leads/{{leadId}}/engagement", tags=["lead engagement"], summary="A lead's engagement",
             description="Counts by event type (human), first and last activity, engagement score and tier "
                         "(mart_lead_engagement), and the lead score when one is published.",
             responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def lead_engagement(request: Request, leadId: LeadId, key=analytics_read) -> Response:
        data, fresh = await read(leads.engagement, key.tenant_id, leadId)
        if data is None:
            raise not_found("Lead", "leadId")
        return respond(request, "Lead engagement", data, fresh)

    @app.get(f"{PREFIX}/leads/{{leadId}}/timeline", tags=["lead engagement"], summary="A lead's events, newest first",
             responses={200: {"model": PageEnvelope}, **READ_ERRORS})
    async def lead_timeline(request: Request, leadId: LeadId, key=analytics_read,
                            eventType: Annotated[EventType | None, Query()] = None,
                            page: PageNo = 1, limit: PageSize = 50) -> Response:
        def work(cur):
            if not leads.lead_exists(cur, key.tenant_id, leadId):
                return None
            return leads.timeline(cur, key.tenant_id, leadId, eventType.value if eventType else None,
                                  (page - 1) * limit, limit)
        result, fresh = await read(work)
        if result is None:
            raise not_found("Lead", "leadId")
        return paged(request, "Lead timeline", result[0], result[1], page, limit, fresh)

    # ---- form submissions and page visits ---------------------------------------------------------
    @app.get(f"{PREFIX}/form-submissions", tags=["form submissions"], summary="Form submissions, newest first",
             responses={200: {"model": PageEnvelope}, **READ_ERRORS})
    async def form_submissions(request: Request, key=analytics_read, formId: OptionalId = None,
                               leadId: OptionalId = None, start: FromDay = None, end: ToDay = None,
                               page: PageNo = 1, limit: PageSize = 50) -> Response:
        first, last = day_range(start, end)
        (rows, total), fresh = await read(leads.form_submissions, key.tenant_id, first, last, formId, leadId,
                                          (page - 1) * limit, limit)
        return paged(request, "Form submissions", rows, total, page, limit, fresh)

    @app.get(f"{PREFIX}/form-submissions/summary", tags=["form submissions"], summary="Per form: submissions, "
             "unique leads, leads converted afterwards", responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def form_submission_summary(request: Request, key=analytics_read, formId: OptionalId = None,
                                      start: FromDay = None, end: ToDay = None) -> Response:
        first, last = day_range(start, end)
        rows, fresh = await read(leads.form_summary, key.tenant_id, first, last, formId)
        return respond(request, "Form submission summary",
                       {"from": first.isoformat(), "to": last.isoformat(), "forms": rows}, fresh)

    @app.get(f"{PREFIX}/page-visits", tags=["page visits"], summary="Page visits, newest first",
             responses={200: {"model": PageEnvelope}, **READ_ERRORS})
    async def page_visits(request: Request, key=analytics_read,
                          url: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
                          leadId: OptionalId = None, start: FromDay = None, end: ToDay = None,
                          page: PageNo = 1, limit: PageSize = 50) -> Response:
        first, last = day_range(start, end)
        (rows, total), fresh = await read(leads.page_visits, key.tenant_id, first, last, url, leadId,
                                          (page - 1) * limit, limit)
        return paged(request, "Page visits", rows, total, page, limit, fresh)

    @app.get(f"{PREFIX}/page-visits/top-pages", tags=["page visits"], summary="Most visited pages",
             responses={200: {"model": ListEnvelope}, **READ_ERRORS})
    async def top_pages(request: Request, key=analytics_read, start: FromDay = None, end: ToDay = None,
                        limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
        first, last = day_range(start, end)
        rows, fresh = await read(leads.top_pages, key.tenant_id, first, last, limit)
        return respond(request, "Top pages", rows, fresh)

    # ---- dashboard --------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/dashboard/kpis", tags=["dashboard"], summary="Email KPIs by send day",
             description="Counts and rates (ratios of summed counts, METRICS.md) grouped by day, week, month, "
                         "workflow, step, rep or team (weekly); totals of the range; with "
                         "`compareTo=previous_period` the same totals for the period just before. When the range "
                         "includes today, `today` adds the events that arrived since the last publication.",
             responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def kpis(request: Request, key=analytics_read, start: FromDay = None, end: ToDay = None,
                   groupBy: Literal["day", "week", "month", "workflow", "step", "rep", "team"] = "day",
                   compareTo: Literal["previous_period"] | None = None) -> Response:
        first, last = day_range(start, end)
        day = today()

        def work(cur):
            data = dashboard.kpis(cur, key.tenant_id, first, last, groupBy, compareTo is not None)
            if first <= day <= last:
                mark = publication_record(cur)[2]  # the version this cursor reads, not whatever is newest now
                unloaded = realtime.unloaded_events(api.settings, key.tenant_id, day,
                                                    datetime.fromisoformat(mark) if mark else None)
                data["today"] = dashboard.today_activity(cur, key.tenant_id, day, unloaded)
            return data
        data, fresh = await read(work)
        return respond(request, "KPIs", data, fresh)

    async def run_funnel(request: Request, key, body: FunnelIn) -> Response:  # key: charged as a heavy read
        first, last = day_range(body.from_, body.to, 90)
        spec = FunnelSpec(steps=[FunnelStep(event_type=s.eventType, url_contains=s.urlContains, form_id=s.formId)
                                 for s in body.steps],
                          window_seconds=body.windowSeconds, entity=body.entity, tenant_id=key.tenant_id,
                          start=datetime.combine(first, time()), end=datetime.combine(last + timedelta(days=1), time()),
                          breakdowns=tuple(dict.fromkeys(body.breakdown)), human_only=body.humanOnly)
        data, fresh = await read(dashboard.funnel, spec, heavy=True)
        return respond(request, "Funnel", {"from": first.isoformat(), "to": last.isoformat(), **data}, fresh)

    @app.get(f"{PREFIX}/dashboard/funnel", tags=["dashboard"], summary="A funnel from query parameters",
             description="`steps` is a comma-separated list of event types (default: the email funnel "
                         "email_sent,email_open,link_click,email_reply); window in days; entry days from/to.",
             responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def funnel_get(request: Request, key=heavy_read,
                         steps: Annotated[str, Query(min_length=1, max_length=200)] =
                         "email_sent,email_open,link_click,email_reply",
                         windowDays: Annotated[int, Query(ge=1, le=180)] = 7,
                         start: FromDay = None, end: ToDay = None,
                         breakdown: Annotated[Literal["workflow", "step", "rep", "team", "lead_source", "cohort_week"]
                                             | None, Query()] = None,
                         entity: Literal["lead", "message"] = "lead") -> Response:
        try:
            body = FunnelIn.model_validate({
                "steps": [{"eventType": s.strip()} for s in steps.split(",")], "windowSeconds": windowDays * 86400,
                "from": start, "to": end, "breakdown": [breakdown] if breakdown else [], "entity": entity})
        except ValidationError as exc:
            raise ApiError(422, "Validation failed", [{"field": "steps", "issue": e["msg"]} for e in exc.errors()][:3]
                           ) from None
        return await run_funnel(request, key, body)

    @app.post(f"{PREFIX}/dashboard/funnel", tags=["dashboard"], summary="A custom funnel",
              responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def funnel_post(request: Request, body: Annotated[FunnelIn, Body()], key=heavy_read) -> Response:
        return await run_funnel(request, key, body)

    @app.get(f"{PREFIX}/dashboard/cohorts", tags=["dashboard"], summary="Weekly cohorts: retention or conversion",
             description="Cohorts by the week (Monday) of each lead's first send, for cohort weeks in the range "
                         "(default: the last 12 weeks); per week offset the active (retention) or converted "
                         "(conversion) leads and their share of the cohort. Only fully elapsed weeks.",
             responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def cohorts(request: Request, key=analytics_read, start: FromDay = None, end: ToDay = None,
                      metric: Literal["retention", "conversion"] = "retention") -> Response:
        first, last = day_range(start, end, 84)
        rows, fresh = await read(dashboard.cohorts, key.tenant_id, first, last, metric)
        return respond(request, "Cohorts", {"from": first.isoformat(), "to": last.isoformat(), "metric": metric,
                                            "cohorts": rows}, fresh)

    @app.get(f"{PREFIX}/dashboard/team-performance", tags=["dashboard"], summary="Per rep or team",
             description="Email counts and rates per team or rep (the rep's team at the time of the activity), "
                         "over the weeks (Monday) starting in the range, with touches (sends) per reply.",
             responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def team_performance(request: Request, key=analytics_read, start: FromDay = None, end: ToDay = None,
                               teamId: OptionalId = None, groupBy: Literal["rep", "team"] = "team") -> Response:
        first, last = day_range(start, end, 84)
        data, fresh = await read(dashboard.team_performance, key.tenant_id, first, last, groupBy, teamId)
        return respond(request, "Team performance", data, fresh)

    # ---- predictive -------------------------------------------------------------------------------
    @app.get(f"{PREFIX}/predictive/lead-scores", tags=["predictive"], summary="Lead scores, best first",
             responses={200: {"model": PageEnvelope}, **READ_ERRORS})
    async def lead_scores(request: Request, key=analytics_read, tier: Literal["A", "B", "C", "D"] | None = None,
                          minScore: Annotated[int | None, Query(ge=0, le=100)] = None,
                          page: PageNo = 1, limit: PageSize = 50) -> Response:
        (rows, total), fresh = await read(leads.lead_scores, key.tenant_id, tier, minScore, (page - 1) * limit, limit)
        return paged(request, "Lead scores", rows, total, page, limit, fresh)

    @app.get(f"{PREFIX}/predictive/lead-scores/{{leadId}}", tags=["predictive"],
             summary="A lead's score with its top factors", responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def lead_score(request: Request, leadId: LeadId, key=analytics_read) -> Response:
        data, fresh = await read(leads.lead_score, key.tenant_id, leadId)
        if data is None:
            raise not_found("Lead score", "leadId")
        return respond(request, "Lead score", data, fresh)

    @app.get(f"{PREFIX}/predictive/model", tags=["predictive"], summary="The production model's card",
             responses={200: {"model": DataEnvelope}, **READ_ERRORS})
    async def model_card(request: Request, key=analytics_read) -> Response:
        pointer = api.settings.models_dir / "production.json"
        production = json.loads(pointer.read_text()) if pointer.exists() else {}
        card_path = api.settings.models_dir / str(production.get("version")) / "model_card.json"
        if not card_path.exists():
            raise ApiError(404, "No model is in production yet", [{"field": "model", "issue": "not trained"}])
        card = json.loads(card_path.read_text())
        public = {k: card.get(k) for k in CARD_FIELDS}
        public["training_window"] = {k: card.get("training_window", {}).get(k) for k in CARD_WINDOW}
        return respond(request, "Model card", {"promotedAt": production.get("promoted_at"), **shape(public, drop=())})
