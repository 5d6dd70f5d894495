"""Every error as the platform's envelope: ours (ApiError), request validation, Starlette's 404/405, the rest."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from api_stub.deps import request_id
from api_stub.envelope import ApiError, error_body, json_response

log = logging.getLogger("leadron.api")


async def api_error(request: Request, exc: ApiError) -> Response:
    headers = dict(request.scope.get("state", {}).get("rate_headers", {})) | (exc.headers or {})
    return json_response(
        exc.status, error_body(exc.status, exc.message, exc.details, request_id(request), exc.code), headers
    )


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return json_response(
            400,
            error_body(400, "Malformed JSON body", [{"field": "body", "issue": "not valid JSON"}], request_id(request)),
        )
    details = [
        {"field": ".".join(str(p) for p in e["loc"] if p not in ("query", "header", "path", "body")), "issue": e["msg"]}
        for e in exc.errors()
    ]
    return json_response(422, error_body(422, "Validation failed", details, request_id(request)))


def allowed_methods(request: Request) -> str:
    """Every method of every route on the request's path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})  # Starlette's own headers, Allow on a 405 among them
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return json_response(exc.status_code, error_body(exc.status_code, message, [], request_id(request)), headers)


async def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error request_id=%s", request_id(request))
    return json_response(500, error_body(500, "Internal error", [], request_id(request)))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
