"""Event status for workflow conditions: has a message (or any message of an execution) been opened,
clicked, replied to? Answered from the API's own log, within a second of ingest, bot rule applied."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api_stub.deps import AnalyticsRead, State, request_id
from api_stub.envelope import success_body
from api_stub.reading import send
from api_stub.routers.common import INGEST_ERRORS, PREFIX
from api_stub.schemas import StatusEnvelope
from api_stub.state import ApiState
from leadron.bot_rule import summarize_status
from leadron.keystore import ApiKey

router = APIRouter(prefix=PREFIX, tags=["events"])


async def _status_of(request: Request, api: ApiState, key: ApiKey, column: str, value: str) -> Response:
    events = await asyncio.to_thread(api.store.events_for, key.tenant_id, column, value)
    data = {
        "messageId": value if column == "message_id" else None,
        "workflowExecutionId": value if column == "workflow_execution_id" else None,
    }
    data |= summarize_status(events, api.bot_rule)
    return send(request, 200, success_body(200, "Event status", data, request_id(request)))


@router.get(
    "/events/status",
    summary="Has a message been opened, clicked or replied to?",
    description="For workflow conditions: answers from events ingested through this API, within a second "
    "of their ingest, without waiting for a pipeline run. Opens and clicks are human only.",
    responses={200: {"model": StatusEnvelope}, **INGEST_ERRORS},
)
async def message_status(
    request: Request, api: State, key: AnalyticsRead, messageId: Annotated[str, Query(min_length=1, max_length=128)]
) -> Response:
    return await _status_of(request, api, key, "message_id", messageId)


@router.get(
    "/workflow-executions/{workflowExecutionId}/status",
    summary="Has any message of a workflow execution been opened, clicked or replied to?",
    responses={200: {"model": StatusEnvelope}, **INGEST_ERRORS},
)
async def execution_status(
    request: Request,
    api: State,
    key: AnalyticsRead,
    workflowExecutionId: Annotated[str, Path(min_length=1, max_length=128)],
) -> Response:
    return await _status_of(request, api, key, "workflow_execution_id", workflowExecutionId)
