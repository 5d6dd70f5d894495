"""POST /v1/analytics/events handled below FastAPI's routing and dependency layers.

The hot path of ingestion (measured: FastAPI's layers cost more than validation and the commit together).
Same code as the declared route (`ingesting.ingest_one`), same envelope.
"""

from __future__ import annotations

import logging

from api_stub.envelope import ApiError, error_body
from api_stub.ingesting import ingest_one
from api_stub.routers.common import PREFIX
from api_stub.state import ApiState, client_of

log = logging.getLogger("leadron.api")


class SingleEventFastPath:
    def __init__(self, app, api: ApiState):
        self.app, self.api = app, api

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != f"{PREFIX}/events":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = scope.get("state", {}).get("request_id", "")
        extra: dict[str, str] = {}
        try:
            key, extra = self.api.authenticate(headers.get("x-api-key"), "events:write", client_of(scope))
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            status, body, more = await ingest_one(
                self.api, key, headers.get("content-type", ""), b"".join(chunks), headers.get("idempotency-key"), rid
            )
            extra |= more
        except ApiError as exc:
            extra |= exc.headers or {}
            status, body = exc.status, error_body(exc.status, exc.message, exc.details, rid, exc.code)
        except Exception:
            log.exception("unhandled error request_id=%s", rid)
            status, body = 500, error_body(500, "Internal error", [], rid)
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
