"""Read-only access to what the pipeline publishes (never the live warehouse).

One DuckDB connection per published version, opened read-only on the version's own file (the
`marts.duckdb` symlink resolved), so a request reads one whole version even while the pipeline swaps
in the next; each query runs on its own cursor in a worker thread.

Bounded work: every read runs under LEADRON_READ_TIMEOUT (interrupted past it: 503 with Retry-After) on a
connection capped at LEADRON_READ_MEMORY_LIMIT, in one of two bounded thread pools (LEADRON_READ_POOL for
plain reads, LEADRON_HEAVY_READ_POOL for funnels, report runs and export checks) whose queues are bounded
too, so a handful of maximal funnels cannot take every thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb

from api_stub.envelope import ApiError
from leadron.publish import publication_record, published_copy
from leadron.settings import Settings


@dataclass(frozen=True)
class Freshness:
    version: str
    published_at: str
    watermark: str | None  # newest event receipt time in the published data (UTC)

    def as_meta(self) -> dict[str, Any]:
        return {"publishedAt": self.published_at, "version": self.version, "dataFreshAsOf": self.watermark}


@dataclass
class _Version:
    path: str
    con: duckdb.DuckDBPyConnection
    freshness: Freshness


RETRY_AFTER_S = 5


def _busy(reason: str) -> ApiError:
    return ApiError(
        503,
        reason,
        [{"field": "request", "issue": "try again later"}],
        code="OVERLOADED",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class _Pool:
    def __init__(self, name: str, threads: int, queue_per_thread: int):
        self.executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=f"leadron-{name}")
        self.slots = threading.BoundedSemaphore(max(1, threads) * (1 + max(0, queue_per_thread)))


@dataclass(eq=False)
class _Read:
    deadline: float
    cursor: duckdb.DuckDBPyConnection
    timed_out: bool = False


class _Watchdog:
    """One thread for the deadlines of every read of a reader (not one thread per request): a read past its
    deadline is interrupted, and again every 10 ms, since `work` may run several statements."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reads: set[_Read] = set()
        self._thread: threading.Thread | None = None

    def watch(self, cursor: duckdb.DuckDBPyConnection, timeout_s: float) -> _Read:
        read = _Read(time.monotonic() + timeout_s, cursor)
        with self._cond:
            self._reads.add(read)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="leadron-read-timeout", daemon=True)
                self._thread.start()
            self._cond.notify()
        return read

    def release(self, read: _Read) -> None:
        with self._cond:
            self._reads.discard(read)

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                late = [r for r in self._reads if r.deadline <= now]
                for read in late:
                    read.timed_out = True
                    read.cursor.interrupt()
                waiting = [r.deadline - now for r in self._reads if r.deadline > now]
                self._cond.wait(0.01 if late else min(waiting) if waiting else None)


class PublishedReader:
    def __init__(self, settings: Settings):
        self.link = published_copy(settings.publish_dir)
        self.timeout_s = settings.read_timeout_s
        self.memory_limit = settings.read_memory_limit
        queue = settings.read_queue_per_thread
        self.pools = {
            "read": _Pool("read", settings.read_pool_size, queue),
            "heavy": _Pool("heavy-read", settings.heavy_read_pool_size, queue),
        }
        self._current: _Version | None = None
        self._lock = threading.Lock()
        self._watchdog = _Watchdog()

    async def read(self, work, *args, heavy: bool = False):
        """`run(work, *args)` in the route class's pool; 503 when its threads and queue are all taken."""
        pool = self.pools["heavy" if heavy else "read"]
        if not pool.slots.acquire(blocking=False):
            raise _busy("The server is busy with other queries of this kind")
        try:
            return await asyncio.wrap_future(pool.executor.submit(self.run, work, *args))
        finally:
            pool.slots.release()

    def _version(self) -> _Version:
        path = os.path.realpath(self.link)
        current = self._current
        if current is not None and current.path == path:
            return current
        with self._lock:
            if self._current is None or self._current.path != path:
                if not os.path.exists(path):
                    raise ApiError(
                        503,
                        "Nothing is published yet: run the pipeline first",
                        [{"field": "data", "issue": "no published warehouse"}],
                        code="NOT_PUBLISHED",
                    )
                con = duckdb.connect(path, read_only=True)
                # A SET, not a connect-time config: the exports and report runs of this process open the
                # same file, and DuckDB refuses a second connection with another configuration.
                con.execute(f"SET memory_limit = '{self.memory_limit}'")  # validated in settings
                version, published_at, mark = publication_record(con)
                # The previous connection closes when its last cursor is gone.
                self._current = _Version(path, con, Freshness(version, published_at, mark))
            return self._current

    def run(self, work, *args):
        """`work(cursor, *args)` on a cursor of the current version: (its result, the freshness)."""
        version = self._version()
        cursor = version.con.cursor()
        read = self._watchdog.watch(cursor, self.timeout_s)
        try:
            return work(cursor, *args), version.freshness
        except duckdb.InterruptException:
            if read.timed_out:
                raise _busy(f"The query took longer than {self.timeout_s:g} s") from None
            raise
        finally:
            self._watchdog.release(read)
            cursor.close()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._current is not None:
                self._current.con.close()
                self._current = None
