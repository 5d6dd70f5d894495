"""What the routers share: the path prefix and the error responses they document."""

from __future__ import annotations

from api_stub.schemas import ErrorEnvelope

PREFIX = "/v1/analytics"


def errors(*codes: int) -> dict[int, dict]:
    return {code: {"model": ErrorEnvelope} for code in codes}


INGEST_ERRORS = errors(400, 401, 403, 409, 413, 415, 422, 429)
READ_ERRORS = errors(400, 401, 403, 404, 422, 429, 503)
WRITE_ERRORS = errors(400, 401, 403, 404, 409, 422, 429, 503)
