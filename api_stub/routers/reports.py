"""Reports: definitions from the metric catalogue, runs on the published marts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Request
from pydantic import ValidationError
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, HeavyReport, ReportsWrite, State
from api_stub.reading import PageNo, PageSize, not_found, paged, respond
from api_stub.report_io import ObjectId, ReportIn, blocking, invalid, report_data, report_error, run_data, stored_report
from api_stub.routers.common import PREFIX, REPORT_RULES, WRITE_ERRORS, unstated
from api_stub.schemas import DataEnvelope, PageEnvelope
from leadron import report_store
from leadron.reads.shaping import value
from leadron.reports import ReportDefinition, ReportError, build_query, run_report

router = APIRouter(prefix=PREFIX, tags=["reports"])


def definition_of(tenant: str, report_id: str, body) -> ReportDefinition:
    try:
        definition = ReportDefinition.model_validate(
            {**body.model_dump(exclude_unset=True), "id": report_id, "tenant_id": tenant}
        )
        build_query(definition, datetime.now(UTC))  # catalogue checks: unknown metric, mixed sources...
    except ValidationError as exc:
        raise invalid(exc) from None
    except ReportError as exc:
        raise report_error(exc) from None
    return definition


@router.post(
    "/reports",
    status_code=201,
    summary="Create a report",
    description="Metrics and dimensions from the report catalogue (leadron/metric_catalogue.py), filters, "
    "a date range (start/end or lastDays), sort, limit and an optional chart.",
    responses={201: {"model": DataEnvelope}, **WRITE_ERRORS},
    openapi_extra=unstated(*REPORT_RULES),
)
async def create_report(request: Request, api: State, body: Annotated[ReportIn, Body()], key: ReportsWrite) -> Response:
    definition = definition_of(key.tenant_id, report_store.new_id("rpt"), body)
    stored = await blocking(report_store.create_report, api.settings, definition)
    return respond(
        request,
        "Report created",
        report_data(stored),
        status=201,
        headers={"Location": f"{PREFIX}/reports/{definition.id}"},
    )


@router.get("/reports", summary="The tenant's reports", responses={200: {"model": PageEnvelope}, **WRITE_ERRORS})
async def list_reports(
    request: Request, api: State, key: AnalyticsRead, page: PageNo = 1, limit: PageSize = 50
) -> Response:
    rows, total = await blocking(report_store.list_reports, api.settings, key.tenant_id, (page - 1) * limit, limit)
    return paged(request, "Reports", [report_data(r) for r in rows], total, page, limit)


@router.get("/reports/{reportId}", summary="A report", responses={200: {"model": DataEnvelope}, **WRITE_ERRORS})
async def get_report(request: Request, api: State, reportId: ObjectId, key: AnalyticsRead) -> Response:
    return respond(request, "Report", report_data(await stored_report(api.settings, key.tenant_id, reportId)))


@router.put(
    "/reports/{reportId}",
    summary="Replace a report's definition",
    responses={200: {"model": DataEnvelope}, **WRITE_ERRORS},
    openapi_extra=unstated(*REPORT_RULES),
)
async def put_report(
    request: Request, api: State, reportId: ObjectId, body: Annotated[ReportIn, Body()], key: ReportsWrite
) -> Response:
    await stored_report(api.settings, key.tenant_id, reportId)
    definition = definition_of(key.tenant_id, reportId, body)
    if not await blocking(report_store.update_report, api.settings, definition):
        raise not_found("Report", "reportId")
    return respond(request, "Report updated", report_data(await stored_report(api.settings, key.tenant_id, reportId)))


@router.delete(
    "/reports/{reportId}",
    summary="Delete a report, its schedules and runs",
    responses={200: {"model": DataEnvelope}, **WRITE_ERRORS},
)
async def delete_report(request: Request, api: State, reportId: ObjectId, key: ReportsWrite) -> Response:
    if not await blocking(report_store.delete_report, api.settings, key.tenant_id, reportId):
        raise not_found("Report", "reportId")
    return respond(request, "Report deleted", {"id": reportId, "deleted": True})


@router.post(
    "/reports/{reportId}/run",
    status_code=201,
    summary="Run a report now on the published marts",
    responses={201: {"model": DataEnvelope}, **WRITE_ERRORS},
    openapi_extra=unstated(*REPORT_RULES),
)
async def run(request: Request, api: State, reportId: ObjectId, key: HeavyReport) -> Response:
    definition: ReportDefinition = (await stored_report(api.settings, key.tenant_id, reportId))["definition"]

    def work(cur):
        return run_report(cur, definition, datetime.now(UTC))

    try:
        rows, fresh = await api.reader.read(work, heavy=True)
    except ReportError as exc:  # the catalogue changed since the report was saved
        raise report_error(exc) from None
    shaped = [{k: value(v) for k, v in r.items()} for r in rows]  # the catalogue's column names, kept
    run_id = await blocking(
        lambda: report_store.record_run(
            api.settings,
            key.tenant_id,
            reportId,
            status="succeeded",
            row_count=len(rows),
            rows=orjson.dumps(shaped).decode(),
            publication_version=fresh.version,
            data_fresh_as_of=fresh.watermark,
        )
    )
    stored = await blocking(report_store.get_run, api.settings, key.tenant_id, reportId, run_id)
    return respond(
        request,
        "Report run",
        run_data(stored, definition),
        fresh,
        status=201,
        headers={"Location": f"{PREFIX}/reports/{reportId}/runs/{run_id}"},
    )


@router.get(
    "/reports/{reportId}/runs/{runId}",
    summary="A run's result",
    responses={200: {"model": DataEnvelope}, **WRITE_ERRORS},
)
async def get_run(request: Request, api: State, reportId: ObjectId, runId: ObjectId, key: AnalyticsRead) -> Response:
    stored = await blocking(report_store.get_run, api.settings, key.tenant_id, reportId, runId)
    if stored is None:
        raise not_found("Run", "runId")
    definition = (await stored_report(api.settings, key.tenant_id, reportId))["definition"]
    return respond(request, "Report run", run_data(stored, definition))
