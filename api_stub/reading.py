"""What every read endpoint shares: query parameters, row shaping and the response envelope."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BeforeValidator
from starlette.responses import Response

from api_stub.envelope import ApiError, json_response, pagination, success_body
from api_stub.published import Freshness

MAX_DAYS = 731  # the longest range a dashboard may ask for

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_day(v: Any) -> Any:
    """Only YYYY-MM-DD (pydantic alone would also take a number of seconds since 1970)."""
    if not isinstance(v, date) and not (isinstance(v, str) and ISO_DAY.match(v)):
        raise ValueError("a day as YYYY-MM-DD")
    return v


Day = Annotated[date, BeforeValidator(iso_day)]
FromDay = Annotated[Day | None, Query(alias="from", description="First UTC day (inclusive), YYYY-MM-DD")]
ToDay = Annotated[Day | None, Query(alias="to", description="Last UTC day (inclusive), YYYY-MM-DD")]
PageNo = Annotated[int, Query(ge=1, le=100_000, description="Page, from 1")]
PageSize = Annotated[int, Query(ge=1, le=500, description="Rows per page (at most 500)")]
Id = Annotated[str, Query(min_length=1, max_length=128)]


def today() -> date:
    return datetime.now(UTC).date()


def day_range(start: date | None, end: date | None, default_days: int = 30) -> tuple[date, date]:
    """Inclusive [start, end]; defaults to the `default_days` days ending today."""
    end = end or (start + timedelta(days=default_days - 1) if start else today())
    start = start or end - timedelta(days=default_days - 1)
    if end < start:
        raise ApiError(422, "Validation failed", [{"field": "to", "issue": "must not be before from"}])
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, "Validation failed", [{"field": "from", "issue": f"at most {MAX_DAYS} days"}])
    return start, end


def send(request: Request, status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with the request's rate-limit headers."""
    return json_response(status, body, dict(request.scope["state"].get("rate_headers", {})) | (headers or {}))


def respond(
    request: Request,
    message: str,
    data: Any,
    freshness: Freshness | None = None,
    status: int = 200,
    page: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    extra = {"dataFreshness": freshness.as_meta()} if freshness else None
    body = success_body(
        status,
        message,
        data,
        request.scope["state"].get("request_id"),
        meta_extra=extra,
        **({"pagination": page} if page is not None else {}),
    )
    return send(request, status, body, headers)


def paged(
    request: Request,
    message: str,
    rows: list[dict],
    total: int,
    page: int,
    limit: int,
    freshness: Freshness | None = None,
) -> Response:
    return respond(request, message, rows, freshness, page=pagination(page, limit, total))


def not_found(what: str, field: str) -> ApiError:
    # The same answer for an id that does not exist and one of another tenant.
    return ApiError(404, f"{what} not found", [{"field": field, "issue": "not found"}])
