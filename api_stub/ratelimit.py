"""Token buckets: per API key (weighted by what a request makes the server do) and per client address.

Limits are per server process; `leadron serve --workers N` gives each worker 1/N of every limit, so the
workers together never allow more than the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from api_stub.envelope import ApiError

# What a request costs in units of LEADRON_RATE_LIMIT. A batch costs its events.
COST = {"request": 1.0, "heavy_read": 20.0, "export": 50.0}
MAX_BUCKETS = 100_000  # least recently used buckets beyond this are dropped (a full bucket is the default)


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: float):
        self.rate, self.burst = rate_per_s, max(1.0, burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> tuple[bool, int, int]:
        """(allowed, remaining, retry_after_seconds). A cost above the bucket size takes the whole bucket."""
        cost = min(cost, self.burst)
        now = time.monotonic()
        with self._lock:
            tokens = self._level(self._buckets.pop(key, None), now)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        retry = 0 if allowed else max(1, math.ceil((cost - tokens) / self.rate))
        return allowed, int(tokens), retry

    def peek(self, key: str) -> tuple[float, int]:
        """(tokens now, seconds until one is back) without taking any."""
        with self._lock:
            tokens = self._level(self._buckets.get(key), time.monotonic())
        return tokens, 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def _level(self, bucket: tuple[float, float] | None, now: float) -> float:
        """Tokens in a bucket (tokens, when last seen) refilled up to now; a bucket never seen is full."""
        if bucket is None:
            return self.burst
        tokens, last = bucket
        return min(self.burst, tokens + (now - last) * self.rate)


class ClientLimits:
    """Per client address: failed authentications (LEADRON_AUTH_FAILURE_RATE per second) and requests to the
    routes that need no key, tracking links and webhooks (LEADRON_ANONYMOUS_RATE_LIMIT per second)."""

    def __init__(self, failure_rate: float, anonymous_rate: float):
        self.failures = RateLimiter(failure_rate, failure_rate)
        self.anonymous = RateLimiter(anonymous_rate, 2 * anonymous_rate)

    @staticmethod
    def _too_many(limit: float, retry_after: int, field: str, issue: str) -> ApiError:
        return ApiError(
            429,
            "Too many requests from this client",
            [{"field": field, "issue": issue}],
            headers={
                "Retry-After": str(retry_after),
                "X-RateLimit-Limit": str(int(limit)),
                "X-RateLimit-Remaining": "0",
            },
        )

    def refuse_if_failing(self, client: str) -> None:
        tokens, retry_after = self.failures.peek(client)
        if tokens < 1:
            raise self._too_many(self.failures.rate, retry_after, "X-API-Key", "too many failed authentications")

    def failed(self, client: str) -> None:
        self.failures.take(client)

    def limit_anonymous(self, client: str) -> None:
        allowed, _, retry_after = self.anonymous.take(client)
        if not allowed:
            raise self._too_many(self.anonymous.rate, retry_after, "client", "too many requests")
