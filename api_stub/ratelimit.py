"""Per-key token bucket (per server process)."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: float):
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> tuple[bool, int, int]:
        """(allowed, remaining, retry_after_seconds)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, now)
        retry = 0 if allowed else max(1, math.ceil((cost - tokens) / self.rate))
        return allowed, int(tokens), retry
