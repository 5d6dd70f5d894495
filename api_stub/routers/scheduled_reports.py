"""Scheduled reports: a report's e-mail schedules and their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import ValidationError
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, ReportsWrite, State
from api_stub.reading import PageNo, PageSize, not_found, paged, respond
from api_stub.report_io import (
    ObjectId,
    ScheduleIn,
    blocking,
    invalid,
    report_error,
    schedule_data,
    stored_report,
    stored_schedule,
)
from api_stub.routers.common import PREFIX, SCHEDULE_RULES, WRITE_ERRORS, unstated
from api_stub.schemas import DataEnvelope, PageEnvelope
from leadron import report_store
from leadron.reads.shaping import shape
from leadron.report_delivery import delivery_page, public_delivery_error
from leadron.report_schedules import ReportSchedule

router = APIRouter(prefix=PREFIX, tags=["scheduled reports"])


def schedule_of(schedule_id: str, body) -> ReportSchedule:
    try:
        return ReportSchedule.model_validate({**body.model_dump(exclude_unset=True), "id": schedule_id})
    except ValidationError as exc:
        raise invalid(exc) from None


@router.post(
    "/reports/{reportId}/schedules",
    status_code=201,
    summary="Schedule a report's e-mail",
    description="A cron expression or a cadence (daily, weekly "
    "with weekday, monthly with day) at a time in a time zone; recipients; formats (csv, xlsx, pdf, html).",
    responses={201: {"model": DataEnvelope}, **WRITE_ERRORS},
    openapi_extra=unstated(*SCHEDULE_RULES),
)
async def create_schedule(
    request: Request, api: State, reportId: ObjectId, body: Annotated[ScheduleIn, Body()], key: ReportsWrite
) -> Response:
    await stored_report(api.settings, key.tenant_id, reportId)
    schedule = schedule_of(report_store.new_id("sch"), body)
    try:
        stored = await blocking(report_store.create_schedule, api.settings, key.tenant_id, reportId, schedule)
    except report_store.ScheduleLimitError as exc:
        raise report_error(exc) from None
    return respond(
        request,
        "Schedule created",
        schedule_data(stored),
        status=201,
        headers={"Location": f"{PREFIX}/reports/{reportId}/schedules/{schedule.id}"},
    )


@router.get(
    "/reports/{reportId}/schedules",
    summary="A report's schedules",
    responses={200: {"model": PageEnvelope}, **WRITE_ERRORS},
)
async def list_schedules(request: Request, api: State, reportId: ObjectId, key: AnalyticsRead) -> Response:
    await stored_report(api.settings, key.tenant_id, reportId)
    rows = await blocking(report_store.list_schedules, api.settings, key.tenant_id, reportId)
    return paged(request, "Schedules", [schedule_data(r) for r in rows], len(rows), 1, max(len(rows), 1))


@router.get(
    "/reports/{reportId}/schedules/{scheduleId}",
    summary="A schedule",
    responses={200: {"model": DataEnvelope}, **WRITE_ERRORS},
)
async def get_schedule(
    request: Request, api: State, reportId: ObjectId, scheduleId: ObjectId, key: AnalyticsRead
) -> Response:
    return respond(
        request, "Schedule", schedule_data(await stored_schedule(api.settings, key.tenant_id, reportId, scheduleId))
    )


@router.put(
    "/reports/{reportId}/schedules/{scheduleId}",
    summary="Replace a schedule",
    responses={200: {"model": DataEnvelope}, **WRITE_ERRORS},
    openapi_extra=unstated(*SCHEDULE_RULES),
)
async def put_schedule(
    request: Request,
    api: State,
    reportId: ObjectId,
    scheduleId: ObjectId,
    body: Annotated[ScheduleIn, Body()],
    key: ReportsWrite,
) -> Response:
    await stored_schedule(api.settings, key.tenant_id, reportId, scheduleId)
    schedule = schedule_of(scheduleId, body)
    await blocking(report_store.update_schedule, api.settings, key.tenant_id, reportId, schedule)
    return respond(
        request,
        "Schedule updated",
        schedule_data(await stored_schedule(api.settings, key.tenant_id, reportId, scheduleId)),
    )


@router.delete(
    "/reports/{reportId}/schedules/{scheduleId}",
    summary="Delete a schedule",
    responses={200: {"model": DataEnvelope}, **WRITE_ERRORS},
)
async def delete_schedule(
    request: Request, api: State, reportId: ObjectId, scheduleId: ObjectId, key: ReportsWrite
) -> Response:
    if not await blocking(report_store.delete_schedule, api.settings, key.tenant_id, reportId, scheduleId):
        raise not_found("Schedule", "scheduleId")
    return respond(request, "Schedule deleted", {"id": scheduleId, "deleted": True})


@router.get(
    "/reports/{reportId}/schedules/{scheduleId}/deliveries",
    summary="A schedule's deliveries, newest first",
    responses={200: {"model": PageEnvelope}, **WRITE_ERRORS},
)
async def list_deliveries(
    request: Request,
    api: State,
    reportId: ObjectId,
    scheduleId: ObjectId,
    key: AnalyticsRead,
    page: PageNo = 1,
    limit: PageSize = 50,
) -> Response:
    await stored_schedule(api.settings, key.tenant_id, reportId, scheduleId)
    rows, total = await blocking(
        delivery_page, api.settings, key.tenant_id, reportId, scheduleId, (page - 1) * limit, limit
    )
    shown = [
        shape(r | {"error": public_delivery_error(r["error"])}, drop=("tenant_id", "report_id", "schedule_id"))
        for r in rows
    ]
    return paged(request, "Deliveries", shown, total, page, limit)
