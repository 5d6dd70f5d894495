"""Reports, report schedules and exports through the API.

Reports and schedules live in the metadata store (leadron/report_store.py), where the Dagster
schedule sensor finds them beside the YAML-defined ones. Runs read the published copy. Exports run in
a worker thread of the API process (the same code as the `export_dataset` job) and are polled by id.
Another tenant's report, schedule, run or export is a 404 exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Body, FastAPI, Path, Request
from pydantic import ConfigDict, ValidationError, create_model
from pydantic.alias_generators import to_camel
from starlette.responses import FileResponse, Response

from leadron.contract import describe_errors
from api_stub.envelope import ApiError
from api_stub.reading import PageNo, PageSize, not_found, paged, respond, shape, value
from api_stub.schemas import DataEnvelope, ErrorEnvelope, ExportIn, PageEnvelope
from leadron import exports, report_store
from leadron.report_delivery import deliveries, public_delivery_error
from leadron.report_schedules import ReportSchedule
from leadron.reports import ReportDefinition, ReportError, build_query, fields, run_report

log = logging.getLogger("leadron.api.exports")
PREFIX = "/v1/analytics"
ERRORS = {code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 422, 429, 503)}
ObjectId = Annotated[str, Path(min_length=1, max_length=64)]


def _input_model(name: str, model, without: tuple[str, ...]):
    """`model`'s fields minus those the server sets, with camelCase names (snake_case accepted)."""
    config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)
    return create_model(name, __config__=config,
                        **{n: (f.annotation, f) for n, f in model.model_fields.items() if n not in without})


ReportIn = _input_model("ReportIn", ReportDefinition, ("id", "tenant_id", "schedules"))
ScheduleIn = _input_model("ScheduleIn", ReportSchedule, ("id",))


def _invalid(exc: ValidationError) -> ApiError:
    return ApiError(422, "Validation failed", describe_errors(exc))


def _report_error(exc: ValueError) -> ApiError:
    field, _, reason = str(exc).partition(": ")
    return ApiError(422, "Validation failed", [{"field": to_camel(field), "issue": reason or str(exc)}])


def _report_data(stored: dict) -> dict[str, Any]:
    definition: ReportDefinition = stored["definition"]
    body = definition.model_dump(mode="json", exclude={"tenant_id", "schedules"})
    return {**body, "createdAt": stored["created_at"], "updatedAt": stored["updated_at"]}


def _schedule_data(stored: dict) -> dict[str, Any]:
    return {**stored["schedule"].model_dump(mode="json"), "reportId": stored["report_id"],
            "createdAt": stored["created_at"], "updatedAt": stored["updated_at"]}


def register(app: FastAPI, api, analytics_read, reports_write, exports_read, heavy_report, export_start) -> None:
    """`heavy_report` and `export_start` are reports:write and exports:write charged as heavy work."""
    settings = api.settings
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="leadron-export")
    api.on_close.append(lambda: pool.shutdown(wait=False, cancel_futures=False))

    async def blocking(work, *args):
        return await asyncio.to_thread(work, *args)

    def definition_of(tenant: str, report_id: str, body) -> ReportDefinition:
        try:
            definition = ReportDefinition.model_validate(
                {**body.model_dump(exclude_unset=True), "id": report_id, "tenant_id": tenant})
            build_query(definition, datetime.now(UTC))  # catalogue checks: unknown metric, mixed sources...
        except ValidationError as exc:
            raise _invalid(exc) from None
        except ReportError as exc:
            raise _report_error(exc) from None
        return definition

    async def stored_report(tenant: str, report_id: str) -> dict:
        stored = await blocking(report_store.get_report, settings, tenant, report_id)
        if stored is None:
            raise not_found("Report", "reportId")
        return stored

    # ---- reports ----------------------------------------------------------------------------------
    @app.post(f"{PREFIX}/reports", status_code=201, tags=["reports"], summary="Create a report",
              description="Metrics and dimensions from the report catalogue (leadron/reports.py), filters, "
                          "a date range (start/end or lastDays), sort, limit and an optional chart.",
              responses={201: {"model": DataEnvelope}, **ERRORS})
    async def create_report(request: Request, body: Annotated[ReportIn, Body()], key=reports_write) -> Response:
        definition = definition_of(key.tenant_id, report_store.new_id("rpt"), body)
        stored = await blocking(report_store.create_report, settings, definition)
        return respond(request, "Report created", _report_data(stored), status=201,
                       headers={"Location": f"{PREFIX}/reports/{definition.id}"})

    @app.get(f"{PREFIX}/reports", tags=["reports"], summary="The tenant's reports",
             responses={200: {"model": PageEnvelope}, **ERRORS})
    async def list_reports(request: Request, key=analytics_read, page: PageNo = 1, limit: PageSize = 50) -> Response:
        rows, total = await blocking(report_store.list_reports, settings, key.tenant_id, (page - 1) * limit, limit)
        return paged(request, "Reports", [_report_data(r) for r in rows], total, page, limit)

    @app.get(f"{PREFIX}/reports/{{reportId}}", tags=["reports"], summary="A report",
             responses={200: {"model": DataEnvelope}, **ERRORS})
    async def get_report(request: Request, reportId: ObjectId, key=analytics_read) -> Response:
        return respond(request, "Report", _report_data(await stored_report(key.tenant_id, reportId)))

    @app.put(f"{PREFIX}/reports/{{reportId}}", tags=["reports"], summary="Replace a report's definition",
             responses={200: {"model": DataEnvelope}, **ERRORS})
    async def put_report(request: Request, reportId: ObjectId, body: Annotated[ReportIn, Body()],
                         key=reports_write) -> Response:
        await stored_report(key.tenant_id, reportId)
        definition = definition_of(key.tenant_id, reportId, body)
        if not await blocking(report_store.update_report, settings, definition):
            raise not_found("Report", "reportId")
        return respond(request, "Report updated", _report_data(await stored_report(key.tenant_id, reportId)))

    @app.delete(f"{PREFIX}/reports/{{reportId}}", tags=["reports"], summary="Delete a report, its schedules and runs",
                responses={200: {"model": DataEnvelope}, **ERRORS})
    async def delete_report(request: Request, reportId: ObjectId, key=reports_write) -> Response:
        if not await blocking(report_store.delete_report, settings, key.tenant_id, reportId):
            raise not_found("Report", "reportId")
        return respond(request, "Report deleted", {"id": reportId, "deleted": True})

    @app.post(f"{PREFIX}/reports/{{reportId}}/run", status_code=201, tags=["reports"],
              summary="Run a report now on the published marts", responses={201: {"model": DataEnvelope}, **ERRORS})
    async def run(request: Request, reportId: ObjectId, key=heavy_report) -> Response:
        definition: ReportDefinition = (await stored_report(key.tenant_id, reportId))["definition"]

        def work(cur):
            return run_report(cur, definition, datetime.now(UTC))
        try:
            rows, fresh = await api.reader.read(work, heavy=True)
        except ReportError as exc:  # the catalogue changed since the report was saved
            raise _report_error(exc) from None
        shaped = [{k: value(v) for k, v in r.items()} for r in rows]  # the catalogue's column names, kept
        run_id = await blocking(lambda: report_store.record_run(
            settings, key.tenant_id, reportId, status="succeeded", row_count=len(rows), rows=orjson.dumps(shaped).decode(),
            publication_version=fresh.version, data_fresh_as_of=fresh.watermark))
        stored = await blocking(report_store.get_run, settings, key.tenant_id, reportId, run_id)
        return respond(request, "Report run", _run_data(stored, definition), fresh, status=201,
                       headers={"Location": f"{PREFIX}/reports/{reportId}/runs/{run_id}"})

    @app.get(f"{PREFIX}/reports/{{reportId}}/runs/{{runId}}", tags=["reports"], summary="A run's result",
             responses={200: {"model": DataEnvelope}, **ERRORS})
    async def get_run(request: Request, reportId: ObjectId, runId: ObjectId, key=analytics_read) -> Response:
        stored = await blocking(report_store.get_run, settings, key.tenant_id, reportId, runId)
        if stored is None:
            raise not_found("Run", "runId")
        definition = (await stored_report(key.tenant_id, reportId))["definition"]
        return respond(request, "Report run", _run_data(stored, definition))

    # ---- schedules --------------------------------------------------------------------------------
    def schedule_of(schedule_id: str, body) -> ReportSchedule:
        try:
            return ReportSchedule.model_validate({**body.model_dump(exclude_unset=True), "id": schedule_id})
        except ValidationError as exc:
            raise _invalid(exc) from None

    async def stored_schedule(tenant: str, report_id: str, schedule_id: str) -> dict:
        stored = await blocking(report_store.get_schedule, settings, tenant, report_id, schedule_id)
        if stored is None:
            raise not_found("Schedule", "scheduleId")
        return stored

    @app.post(f"{PREFIX}/reports/{{reportId}}/schedules", status_code=201, tags=["scheduled reports"],
              summary="Schedule a report's e-mail", description="A cron expression or a cadence (daily, weekly "
              "with weekday, monthly with day) at a time in a time zone; recipients; formats (csv, xlsx, pdf, html).",
              responses={201: {"model": DataEnvelope}, **ERRORS})
    async def create_schedule(request: Request, reportId: ObjectId, body: Annotated[ScheduleIn, Body()],
                              key=reports_write) -> Response:
        await stored_report(key.tenant_id, reportId)
        schedule = schedule_of(report_store.new_id("sch"), body)
        try:
            stored = await blocking(report_store.create_schedule, settings, key.tenant_id, reportId, schedule)
        except report_store.ScheduleLimitError as exc:
            raise _report_error(exc) from None
        return respond(request, "Schedule created", _schedule_data(stored), status=201,
                       headers={"Location": f"{PREFIX}/reports/{reportId}/schedules/{schedule.id}"})

    @app.get(f"{PREFIX}/reports/{{reportId}}/schedules", tags=["scheduled reports"], summary="A report's schedules",
             responses={200: {"model": PageEnvelope}, **ERRORS})
    async def list_schedules(request: Request, reportId: ObjectId, key=analytics_read) -> Response:
        await stored_report(key.tenant_id, reportId)
        rows = await blocking(report_store.list_schedules, settings, key.tenant_id, reportId)
        return paged(request, "Schedules", [_schedule_data(r) for r in rows], len(rows), 1, max(len(rows), 1))

    @app.get(f"{PREFIX}/reports/{{reportId}}/schedules/{{scheduleId}}", tags=["scheduled reports"],
             summary="A schedule", responses={200: {"model": DataEnvelope}, **ERRORS})
    async def get_schedule(request: Request, reportId: ObjectId, scheduleId: ObjectId, key=analytics_read) -> Response:
        return respond(request, "Schedule", _schedule_data(await stored_schedule(key.tenant_id, reportId, scheduleId)))

    @app.put(f"{PREFIX}/reports/{{reportId}}/schedules/{{scheduleId}}", tags=["scheduled reports"],
             summary="Replace a schedule", responses={200: {"model": DataEnvelope}, **ERRORS})
    async def put_schedule(request: Request, reportId: ObjectId, scheduleId: ObjectId,
                           body: Annotated[ScheduleIn, Body()], key=reports_write) -> Response:
        await stored_schedule(key.tenant_id, reportId, scheduleId)
        schedule = schedule_of(scheduleId, body)
        await blocking(report_store.update_schedule, settings, key.tenant_id, reportId, schedule)
        return respond(request, "Schedule updated",
                       _schedule_data(await stored_schedule(key.tenant_id, reportId, scheduleId)))

    @app.delete(f"{PREFIX}/reports/{{reportId}}/schedules/{{scheduleId}}", tags=["scheduled reports"],
                summary="Delete a schedule", responses={200: {"model": DataEnvelope}, **ERRORS})
    async def delete_schedule(request: Request, reportId: ObjectId, scheduleId: ObjectId, key=reports_write) -> Response:
        if not await blocking(report_store.delete_schedule, settings, key.tenant_id, reportId, scheduleId):
            raise not_found("Schedule", "scheduleId")
        return respond(request, "Schedule deleted", {"id": scheduleId, "deleted": True})

    @app.get(f"{PREFIX}/reports/{{reportId}}/schedules/{{scheduleId}}/deliveries", tags=["scheduled reports"],
             summary="A schedule's deliveries, newest first", responses={200: {"model": PageEnvelope}, **ERRORS})
    async def list_deliveries(request: Request, reportId: ObjectId, scheduleId: ObjectId, key=analytics_read,
                              page: PageNo = 1, limit: PageSize = 50) -> Response:
        await stored_schedule(key.tenant_id, reportId, scheduleId)
        rows = (await blocking(deliveries, settings, key.tenant_id, reportId, scheduleId))[::-1]
        chunk = rows[(page - 1) * limit: page * limit]
        shown = [shape(r | {"error": public_delivery_error(r["error"])}, drop=("tenant_id", "report_id", "schedule_id"))
                 for r in chunk]
        return paged(request, "Deliveries", shown, len(rows), page, limit)

    # ---- exports ----------------------------------------------------------------------------------
    @app.post(f"{PREFIX}/exports", status_code=202, tags=["export"], summary="Start an export",
              description="A published mart (or fct_events, or raw_events from the landing zone with personal "
                          "fields hashed) for the key's tenant, filtered by days and ids, as CSV, Parquet, JSON "
                          "Lines or XLSX. Poll `GET /exports/{id}`.",
              responses={202: {"model": DataEnvelope}, **ERRORS})
    async def create_export(request: Request, body: Annotated[ExportIn, Body()], key=export_start) -> Response:
        try:
            export = exports.ExportRequest(
                tenant_id=key.tenant_id, dataset=body.dataset, format=body.format, start=body.from_,
                end=body.to + timedelta(days=1) if body.to else None, workflow_id=body.workflowId,
                user_id=body.userId, team_id=body.teamId)
        except ValidationError as exc:
            raise ApiError(422, "Validation failed", [{"field": "to", "issue": "must not be before from"}]
                           if "end must be after start" in str(exc) else describe_errors(exc)) from None

        def check(cur):
            exports.export_query(cur, export, settings, neutralise=False)
        try:
            await api.reader.read(check, heavy=True)
        except exports.ExportError as exc:
            raise _report_error(exc) from None
        export_id = "exp_" + uuid.uuid4().hex[:24]
        if not await blocking(exports.record, settings, export_id, export, settings.export_queue_per_tenant):
            raise ApiError(429, f"At most {settings.export_queue_per_tenant} exports may be running per tenant",
                           [{"field": "exports", "issue": "wait for a running export to finish"}],
                           headers={"Retry-After": "10"}, code="EXPORT_QUEUE_FULL")
        pool.submit(_export_quietly, settings, export, export_id)
        stored = await blocking(exports.get_export, settings, key.tenant_id, export_id)
        return respond(request, "Export started", _export_data(stored, None), status=202,
                       headers={"Location": f"{PREFIX}/exports/{export_id}"})

    async def stored_export(tenant: str, export_id: str) -> dict:
        stored = await blocking(exports.get_export, settings, tenant, export_id)
        if stored is None:
            raise not_found("Export", "exportId")
        return stored

    @app.get(f"{PREFIX}/exports/{{exportId}}", tags=["export"], summary="An export's status",
             responses={200: {"model": DataEnvelope}, **ERRORS})
    async def get_export(request: Request, exportId: ObjectId, key=exports_read) -> Response:
        stored = await stored_export(key.tenant_id, exportId)
        url = await blocking(exports.download_url, settings, stored)  # signed now, never stored
        return respond(request, "Export", _export_data(stored, url))

    @app.get(f"{PREFIX}/exports/{{exportId}}/download", tags=["export"], summary="Download an export's file",
             responses={200: {"content": {"application/octet-stream": {}}}, **ERRORS}, response_class=Response)
    async def download_export(exportId: ObjectId, key=exports_read) -> Response:
        stored = await stored_export(key.tenant_id, exportId)
        if stored["status"] != "succeeded":
            raise ApiError(409, f"The export is {stored['status']}", [{"field": "exportId", "issue": "not ready"}],
                           code="EXPORT_NOT_READY")
        request = json.loads(stored["request"])
        return FileResponse(stored["path"], filename=f"{request['dataset']}-{exportId}.{request['format']}",
                            media_type=MEDIA_TYPES[request["format"]])


MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "jsonl": "application/x-ndjson",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _export_quietly(settings, export, export_id: str) -> None:
    try:
        exports.run_export(settings, export, export_id)
    except Exception:  # recorded as failed by run_export (the poller sees the error); logged for the operator
        log.exception("export %s failed", export_id)


def _export_data(stored: dict, signed_url: str | None) -> dict[str, Any]:
    request = json.loads(stored["request"])
    url = signed_url or (f"{PREFIX}/exports/{stored['export_id']}/download" if stored["status"] == "succeeded"
                         else None)
    return {"id": stored["export_id"], "status": stored["status"], "dataset": request["dataset"],
            "format": request["format"], "rowCount": stored["rows"], "downloadUrl": url,
            "dataFreshAsOf": stored["data_freshness_watermark"], "error": exports.public_error(stored["error"]),
            "createdAt": stored["created_at"], "finishedAt": stored["finished_at"]}


def _run_data(stored: dict, definition: ReportDefinition) -> dict[str, Any]:
    return {"id": stored["run_id"], "reportId": stored["report_id"], "status": stored["status"],
            "createdAt": stored["created_at"], "rowCount": stored["row_count"],
            # Each column's label and unit from the catalogue, beside the rows (keyed by the catalogue names).
            "fields": fields([*definition.dimensions, *definition.metrics]),
            "rows": orjson.loads(stored["rows"]) if stored["rows"] else [],
            "publicationVersion": stored["publication_version"], "dataFreshAsOf": stored["data_fresh_as_of"]}
