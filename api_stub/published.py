"""Read-only access to what the pipeline publishes (never the live warehouse).

One DuckDB connection per published version, opened read-only on the version's own file (the
`marts.duckdb` symlink resolved), so a request reads one whole version even while the pipeline swaps
in the next; each query runs on its own cursor in a worker thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

from api_stub.envelope import ApiError
from orchestration.publish import publication_record, published_copy
from orchestration.settings import Settings


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


class PublishedReader:
    def __init__(self, settings: Settings):
        self.link = published_copy(settings.publish_dir)
        self._current: _Version | None = None
        self._lock = threading.Lock()

    def _version(self) -> _Version:
        path = os.path.realpath(self.link)
        current = self._current
        if current is not None and current.path == path:
            return current
        with self._lock:
            if self._current is None or self._current.path != path:
                if not os.path.exists(path):
                    raise ApiError(503, "Nothing is published yet: run the pipeline first", [
                        {"field": "data", "issue": "no published warehouse"}], code="NOT_PUBLISHED")
                con = duckdb.connect(path, read_only=True)
                version, published_at, mark = publication_record(con)
                # The previous connection closes when its last cursor is gone.
                self._current = _Version(path, con, Freshness(version, published_at, mark))
            return self._current

    def run(self, work, *args):
        """`work(cursor, *args)` on a cursor of the current version: (its result, the freshness)."""
        version = self._version()
        cursor = version.con.cursor()
        try:
            return work(cursor, *args), version.freshness
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.con.close()
                self._current = None

