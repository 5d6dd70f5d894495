"""Pure ASGI middleware (cheap per request): request ids, body size limit, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid

from api_stub.envelope import ApiError, error_body

log = logging.getLogger("leadron.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Path segments that are credentials: signed tracking and webhook tokens never reach a log line.
_SECRET_SEGMENT = re.compile(r"(/(?:track/open|track/click|webhooks/sendgrid|webhooks/mailgun)/)[^/]+")
DRAIN_LIMIT = 64 * 1024 * 1024  # bytes of an oversize body read and dropped so the client reads its 413
DRAIN_SECONDS = 10.0


def loggable(text: str) -> str:
    """A client-supplied value safe for one log line: control characters escaped, tokens replaced."""
    text = _SECRET_SEGMENT.sub(r"\1…", text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class RequestContextMiddleware:
    """Echo a valid X-Request-Id (or make one), enforce the body limit on bytes actually read."""

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else "req_" + uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 0}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._drain(receive)
            await self._too_large(send_with_id, request_id)
        else:
            received = 0

            async def limited_receive():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        if message.get("more_body"):
                            await self._drain(receive)  # whoever renders the 413, the client reads it
                        raise BodyTooLarge(self.max_body)
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except BodyTooLarge:
                if status_holder["status"] == 0:
                    await self._too_large(send_with_id, request_id)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s %.1fms request_id=%s",
                scope["method"],
                loggable(scope["path"]),
                status_holder["status"],
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    @staticmethod
    async def _drain(receive) -> None:
        """Read and drop the rest of the body (up to DRAIN_LIMIT bytes, DRAIN_SECONDS) before answering.

        Closing a socket with unread bytes in its receive buffer sends a TCP reset, which destroys the
        413 still in flight: the client sees a network error and retries. nginx's lingering close does this."""
        import asyncio

        drained = 0

        async def drain() -> None:
            nonlocal drained
            while drained <= DRAIN_LIMIT:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body"):
                    return

        try:
            await asyncio.wait_for(drain(), DRAIN_SECONDS)
        except (TimeoutError, BodyTooLarge):
            pass

    async def _too_large(self, send, request_id: str) -> None:
        body = error_body(
            413,
            f"Request body is larger than {self.max_body} bytes",
            [{"field": "body", "issue": f"at most {self.max_body} bytes"}],
            request_id,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(ApiError):
    """Raised from `receive` when more bytes arrive than allowed; handlers render it as 413."""

    def __init__(self, limit: int):
        super().__init__(
            413, f"Request body is larger than {limit} bytes", [{"field": "body", "issue": f"at most {limit} bytes"}]
        )
