"""Export: a published mart (or the raw events) for the key's tenant, written in the background."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import ValidationError
from starlette.responses import FileResponse, Response

from api_stub.deps import ExportsRead, ExportStart, State
from api_stub.envelope import ApiError
from api_stub.reading import not_found, respond
from api_stub.report_io import MEDIA_TYPES, ObjectId, blocking, export_data, export_quietly, report_error
from api_stub.routers.common import PREFIX, WRITE_ERRORS, unstated
from api_stub.schemas import DataEnvelope, ExportIn
from api_stub.state import ApiState
from leadron import exports
from leadron.contract import describe_errors

router = APIRouter(prefix=PREFIX, tags=["export"])


async def _stored_export(api: ApiState, tenant: str, export_id: str) -> dict:
    stored = await blocking(exports.get_export, api.settings, tenant, export_id)
    if stored is None:
        raise not_found("Export", "exportId")
    return stored


@router.post(
    "/exports",
    status_code=202,
    summary="Start an export",
    description="A published mart (or fct_events, or raw_events from the landing zone with personal "
    "fields hashed) for the key's tenant, filtered by days and ids, as CSV, Parquet, JSON "
    "Lines or XLSX. Poll `GET /exports/{id}`.",
    responses={202: {"model": DataEnvelope}, **WRITE_ERRORS},
    openapi_extra=unstated(
        "`to` is not before `from`",
        "a filter names a column the dataset has (workflowId, userId, teamId)",
        "the dataset has been published",
    ),
)
async def create_export(request: Request, api: State, body: Annotated[ExportIn, Body()], key: ExportStart) -> Response:
    try:
        export = exports.ExportRequest(
            tenant_id=key.tenant_id,
            dataset=body.dataset,
            format=body.format,
            start=body.from_,
            end=body.to + timedelta(days=1) if body.to else None,
            workflow_id=body.workflowId,
            user_id=body.userId,
            team_id=body.teamId,
        )
    except ValidationError as exc:
        raise ApiError(
            422,
            "Validation failed",
            [{"field": "to", "issue": "must not be before from"}]
            if "end must be after start" in str(exc)
            else describe_errors(exc),
        ) from None

    def check(cur):
        exports.export_query(cur, export, api.settings, neutralise=False)

    try:
        await api.reader.read(check, heavy=True)
    except exports.ExportError as exc:
        raise report_error(exc) from None
    export_id = "exp_" + uuid.uuid4().hex[:24]
    if not await blocking(exports.record, api.settings, export_id, export, api.settings.export_queue_per_tenant):
        raise ApiError(
            429,
            f"At most {api.settings.export_queue_per_tenant} exports may be running per tenant",
            [{"field": "exports", "issue": "wait for a running export to finish"}],
            headers={"Retry-After": "10"},
            code="EXPORT_QUEUE_FULL",
        )
    api.exports.submit(export_quietly, api.settings, export, export_id)
    stored = await blocking(exports.get_export, api.settings, key.tenant_id, export_id)
    return respond(
        request,
        "Export started",
        export_data(stored, None),
        status=202,
        headers={"Location": f"{PREFIX}/exports/{export_id}"},
    )


@router.get(
    "/exports/{exportId}", summary="An export's status", responses={200: {"model": DataEnvelope}, **WRITE_ERRORS}
)
async def get_export(request: Request, api: State, exportId: ObjectId, key: ExportsRead) -> Response:
    stored = await _stored_export(api, key.tenant_id, exportId)
    url = await blocking(exports.download_url, api.settings, stored)  # signed now, never stored
    return respond(request, "Export", export_data(stored, url))


@router.get(
    "/exports/{exportId}/download",
    summary="Download an export's file",
    responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}, **WRITE_ERRORS},
    response_class=Response,
)
async def download_export(api: State, exportId: ObjectId, key: ExportsRead) -> Response:
    stored = await _stored_export(api, key.tenant_id, exportId)
    if stored["status"] != "succeeded":
        raise ApiError(
            409,
            f"The export is {stored['status']}",
            [{"field": "exportId", "issue": "not ready"}],
            code="EXPORT_NOT_READY",
        )
    request = json.loads(stored["request"])
    return FileResponse(
        stored["path"],
        filename=f"{request['dataset']}-{exportId}.{request['format']}",
        media_type=MEDIA_TYPES[request["format"]],
    )
