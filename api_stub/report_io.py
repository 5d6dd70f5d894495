"""Request and response shapes of the reports, schedules and exports routers, and what they share.

Reports and schedules live in the metadata store (leadron/report_store.py), where the Dagster
schedule sensor finds them beside the YAML-defined ones. Runs read the published copy. Exports run in
a worker thread of the API process (the same code as the `export_dataset` job) and are polled by id.
Another tenant's report, schedule, run or export is a 404 exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

import orjson
from fastapi import Path
from pydantic import ConfigDict, ValidationError, create_model
from pydantic.alias_generators import to_camel

from api_stub.envelope import ApiError
from api_stub.reading import not_found
from leadron import exports, report_store
from leadron.contract import describe_errors
from leadron.metric_catalogue import fields
from leadron.report_schedules import ReportSchedule
from leadron.reports import ReportDefinition

log = logging.getLogger("leadron.api.exports")
ObjectId = Annotated[str, Path(min_length=1, max_length=64)]


def _input_model(name: str, model, without: tuple[str, ...]):
    """`model`'s fields minus those the server sets, with camelCase names (snake_case accepted)."""
    config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)
    return create_model(
        name, __config__=config, **{n: (f.annotation, f) for n, f in model.model_fields.items() if n not in without}
    )


ReportIn = _input_model("ReportIn", ReportDefinition, ("id", "tenant_id", "schedules"))
ScheduleIn = _input_model("ScheduleIn", ReportSchedule, ("id",))


def invalid(exc: ValidationError) -> ApiError:
    return ApiError(422, "Validation failed", describe_errors(exc))


def report_error(exc: ValueError) -> ApiError:
    field, _, reason = str(exc).partition(": ")
    return ApiError(422, "Validation failed", [{"field": to_camel(field), "issue": reason or str(exc)}])


def report_data(stored: dict) -> dict[str, Any]:
    definition: ReportDefinition = stored["definition"]
    body = definition.model_dump(mode="json", exclude={"tenant_id", "schedules"})
    return {**body, "createdAt": stored["created_at"], "updatedAt": stored["updated_at"]}


def schedule_data(stored: dict) -> dict[str, Any]:
    return {
        **stored["schedule"].model_dump(mode="json"),
        "reportId": stored["report_id"],
        "createdAt": stored["created_at"],
        "updatedAt": stored["updated_at"],
    }


async def blocking(work, *args):
    return await asyncio.to_thread(work, *args)


async def stored_report(settings, tenant: str, report_id: str) -> dict:
    stored = await blocking(report_store.get_report, settings, tenant, report_id)
    if stored is None:
        raise not_found("Report", "reportId")
    return stored


async def stored_schedule(settings, tenant: str, report_id: str, schedule_id: str) -> dict:
    stored = await blocking(report_store.get_schedule, settings, tenant, report_id, schedule_id)
    if stored is None:
        raise not_found("Schedule", "scheduleId")
    return stored


MEDIA_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_quietly(settings, export, export_id: str) -> None:
    try:
        exports.run_export(settings, export, export_id)
    except Exception:  # recorded as failed by run_export (the poller sees the error); logged for the operator
        log.exception("export %s failed", export_id)


def export_data(stored: dict, signed_url: str | None) -> dict[str, Any]:
    request = json.loads(stored["request"])
    url = signed_url or (
        f"/v1/analytics/exports/{stored['export_id']}/download" if stored["status"] == "succeeded" else None
    )
    return {
        "id": stored["export_id"],
        "status": stored["status"],
        "dataset": request["dataset"],
        "format": request["format"],
        "rowCount": stored["rows"],
        "downloadUrl": url,
        "dataFreshAsOf": stored["data_freshness_watermark"],
        "error": exports.public_error(stored["error"]),
        "createdAt": stored["created_at"],
        "finishedAt": stored["finished_at"],
    }


def run_data(stored: dict, definition: ReportDefinition) -> dict[str, Any]:
    return {
        "id": stored["run_id"],
        "reportId": stored["report_id"],
        "status": stored["status"],
        "createdAt": stored["created_at"],
        "rowCount": stored["row_count"],
        # Each column's label and unit from the catalogue, beside the rows (keyed by the catalogue names).
        "fields": fields([*definition.dimensions, *definition.metrics]),
        "rows": orjson.loads(stored["rows"]) if stored["rows"] else [],
        "publicationVersion": stored["publication_version"],
        "dataFreshAsOf": stored["data_fresh_as_of"],
    }
