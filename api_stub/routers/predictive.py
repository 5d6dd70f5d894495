"""Predictive analytics: lead scores, a lead's score with its factors, the production model's card."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, State
from api_stub.envelope import ApiError
from api_stub.reading import PageNo, PageSize, not_found, paged, respond
from api_stub.routers.common import PREFIX, READ_ERRORS
from api_stub.schemas import DataEnvelope, PageEnvelope
from leadron import model_registry as registry
from leadron.reads import leads
from leadron.reads.shaping import shape

LeadId = Annotated[str, Path(min_length=1, max_length=128)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=128)]

router = APIRouter(prefix=PREFIX, tags=["predictive"])
# What a key sees of the model card: no figure computed over rows (the held-back evaluation, row counts,
# positive rate, the promotion reason's numbers pool every tenant's leads; the operator sees them in Dagster).
CARD_FIELDS = ("model_version", "trained_at", "algorithm", "label", "features", "hyperparameters")
CARD_WINDOW = ("first_snapshot", "last_labelled_snapshot", "held_back_from")


@router.get(
    "/predictive/lead-scores",
    summary="Lead scores, best first",
    responses={200: {"model": PageEnvelope}, **READ_ERRORS},
)
async def lead_scores(
    request: Request,
    api: State,
    key: AnalyticsRead,
    tier: Literal["A", "B", "C", "D"] | None = None,
    minScore: Annotated[int | None, Query(ge=0, le=100)] = None,
    page: PageNo = 1,
    limit: PageSize = 50,
) -> Response:
    (rows, total), fresh = await api.reader.read(
        leads.lead_scores, key.tenant_id, tier, minScore, (page - 1) * limit, limit
    )
    return paged(request, "Lead scores", rows, total, page, limit, fresh)


@router.get(
    "/predictive/lead-scores/{leadId}",
    summary="A lead's score with its top factors",
    responses={200: {"model": DataEnvelope}, **READ_ERRORS},
)
async def lead_score(request: Request, api: State, leadId: LeadId, key: AnalyticsRead) -> Response:
    data, fresh = await api.reader.read(leads.lead_score, key.tenant_id, leadId)
    if data is None:
        raise not_found("Lead score", "leadId")
    return respond(request, "Lead score", data, fresh)


@router.get(
    "/predictive/model", summary="The production model's card", responses={200: {"model": DataEnvelope}, **READ_ERRORS}
)
async def model_card(request: Request, api: State, key: AnalyticsRead) -> Response:
    production = registry.production_card(api.settings.models_dir)
    if production is None:
        raise ApiError(404, "No model is in production yet", [{"field": "model", "issue": "not trained"}])
    pointer, card = production
    public = {k: card.get(k) for k in CARD_FIELDS}
    public["training_window"] = {k: card.get("training_window", {}).get(k) for k in CARD_WINDOW}
    return respond(request, "Model card", {"promotedAt": pointer.get("promoted_at"), **shape(public, drop=())})
