"""The platform's response envelope, for successes and errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import Response

from leadron.reads.shaping import iso_ms

VERSION = "v1"

ERROR_CODES = {
    400: "MALFORMED_JSON",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "IDEMPOTENCY_CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}


def meta(request_id: str | None, **extra: Any) -> dict[str, Any]:
    out = {"timestamp": iso_ms(datetime.now(UTC)), "version": VERSION}
    if request_id:
        out["requestId"] = request_id
    return out | extra


def success_body(
    status: int, message: str, data: Any, request_id: str | None, meta_extra: dict[str, Any] | None = None, **extra: Any
) -> bytes:
    # Dates, times and decimals as ISO strings and numbers; non-string keys (e.g. dates) as strings.
    return orjson.dumps(
        {
            "success": True,
            "status": status,
            "message": message,
            "data": data,
            **extra,
            "meta": meta(request_id, **(meta_extra or {})),
        },
        option=orjson.OPT_NON_STR_KEYS,
        default=_default,
    )


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def pagination(page: int, limit: int, total: int) -> dict[str, Any]:
    pages = (total + limit - 1) // limit
    return {
        "page": page,
        "limit": limit,
        "total": total,
        "totalPages": pages,
        "hasNext": page < pages,
        "hasPrev": page > 1,
    }


def error_body(
    status: int, message: str, details: list[dict[str, str]] | None, request_id: str | None, code: str | None = None
) -> bytes:
    return orjson.dumps(
        {
            "success": False,
            "status": status,
            "message": message,
            "error": {"code": code or ERROR_CODES.get(status, "ERROR"), "details": details or []},
            "meta": meta(request_id),
        }
    )


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class ApiError(Exception):
    """Raised anywhere in a handler; rendered as the error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.details, self.headers, self.code = status, message, details, headers, code
