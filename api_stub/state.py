"""The shared state of one API server process: keys, the event log, the published reader, rate limits.

Routers reach it as `request.app.state.api` (see deps.py); the single-event fast path holds it directly.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from api_stub.envelope import ApiError
from api_stub.ingest_log.records import Committed, StoredEvent, Submission
from api_stub.ingest_log.writer import EventStore
from api_stub.published import PublishedReader
from api_stub.ratelimit import COST, ClientLimits, RateLimiter
from leadron import webhook_auth
from leadron.bot_rule import bot_rule
from leadron.keystore import ApiKey, KeyStore
from leadron.retention import remove_stale_partials
from leadron.settings import Settings


def unauthorized() -> ApiError:
    return ApiError(401, "Invalid or missing API key", [{"field": "X-API-Key", "issue": "invalid or missing"}])


def client_of(scope) -> str:
    """The client's address (the peer of the TCP connection; behind a proxy, run uvicorn with its
    --forwarded-allow-ips so this is the real client)."""
    client = scope.get("client")
    return client[0] if client else ""


class ApiState:
    """Shared state of one server process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        settings.restrict_permissions()
        self.keys = KeyStore(settings.api_keys_path)
        self.store = EventStore(settings)
        self.reader = PublishedReader(settings)
        # Exports run here, two at a time (threads start with the first one).
        self.exports = ThreadPoolExecutor(max_workers=2, thread_name_prefix="leadron-export")
        # Each of N workers enforces 1/N of every limit: together they never allow more than the limit
        # (the kernel spreads connections evenly across SO_REUSEPORT sockets).
        share = settings.api_workers
        self.limiter = RateLimiter(settings.api_rate_per_s / share, settings.api_rate_burst / share)
        self.clients = ClientLimits(settings.auth_failure_rate / share, settings.anonymous_rate / share)
        self.replay = webhook_auth.ReplayCache(settings.api_dir / "webhook_replay.sqlite")
        self.secret = settings.secret()
        self.bot_rule = bot_rule()

    def start(self) -> None:
        remove_stale_partials(self.settings)  # what a killed publication or landing write left behind
        self.store.start()

    def close(self) -> None:
        self.exports.shutdown(wait=False, cancel_futures=False)
        self.store.close()
        self.reader.close()

    # ---- auth + rate limit ------------------------------------------------------------------
    def authenticate(
        self, api_key: str | None, scope: str, client: str, cost: float = COST["request"]
    ) -> tuple[ApiKey, dict[str, str]]:
        """The key and its rate-limit headers; ApiError 401 / 429 / 403 otherwise.

        A client address whose failed authentications use up LEADRON_AUTH_FAILURE_RATE gets 429 before its
        key is even looked at, so keys cannot be guessed at network speed."""
        self.clients.refuse_if_failing(client)
        key = self.keys.authenticate(api_key)
        if key is None:
            self.clients.failed(client)
            raise unauthorized()
        headers = self.charge(key, cost)
        if scope not in key.scopes:
            raise ApiError(
                403,
                f"The API key lacks the {scope} scope",
                [{"field": "X-API-Key", "issue": f"needs {scope}"}],
                headers=headers,
            )
        return key, headers

    def charge(self, key: ApiKey, cost: float, headers: dict[str, str] | None = None) -> dict[str, str]:
        """Take `cost` units from the key's bucket: its rate-limit headers, or ApiError 429."""
        allowed, remaining, retry_after = self.limiter.take(key.key_id, cost)
        headers = {"X-RateLimit-Limit": str(int(self.settings.api_rate_per_s)), "X-RateLimit-Remaining": str(remaining)}
        if not allowed:
            raise ApiError(
                429,
                "Rate limit exceeded",
                [{"field": "X-API-Key", "issue": "too many requests"}],
                headers=headers | {"Retry-After": str(retry_after)},
            )
        return headers

    # ---- the event log ------------------------------------------------------------------------
    def too_old(self, stored: StoredEvent, field: str = "timestamp") -> dict[str, str] | None:
        """Events before the first daily partition could never be loaded: refuse them (as import does)."""
        start = self.settings.partition_start
        if stored.event_date < start:
            return {"field": field, "issue": f"before the first partition day LEADRON_PARTITION_START={start}"}
        return None

    async def commit(self, submission: Submission) -> Committed:
        committed = await asyncio.wrap_future(self.store.submit(submission))
        return committed.finish(submission)
