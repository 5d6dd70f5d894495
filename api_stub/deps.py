"""Dependencies of the routers: the process's state and API-key authentication with a scope and a cost."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api_stub.ratelimit import COST
from api_stub.state import ApiState, client_of
from leadron.keystore import ApiKey


def api_state(request: Request) -> ApiState:
    return request.app.state.api


def request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def _authenticated(scope: str, cost: float):
    async def dependency(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
        key, headers = api_state(request).authenticate(x_api_key, scope, client_of(request.scope), cost)
        request.scope["state"]["rate_headers"] = headers
        return key

    return dependency


State = Annotated[ApiState, Depends(api_state)]
# A key with the scope, charged one request (or the heavy work it starts: funnels, report runs, exports).
EventsWrite = Annotated[ApiKey, Depends(_authenticated("events:write", COST["request"]))]
AnalyticsRead = Annotated[ApiKey, Depends(_authenticated("analytics:read", COST["request"]))]
HeavyRead = Annotated[ApiKey, Depends(_authenticated("analytics:read", COST["heavy_read"]))]
ReportsWrite = Annotated[ApiKey, Depends(_authenticated("reports:write", COST["request"]))]
HeavyReport = Annotated[ApiKey, Depends(_authenticated("reports:write", COST["heavy_read"]))]
ExportsRead = Annotated[ApiKey, Depends(_authenticated("exports:write", COST["request"]))]
ExportStart = Annotated[ApiKey, Depends(_authenticated("exports:write", COST["export"]))]
