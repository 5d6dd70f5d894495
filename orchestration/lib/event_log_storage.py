"""Dagster's SQLite event log with its connections kept: the local instance's storage (dagster.yaml, written by
orchestration/runner.py's `ensure_dagster_home`).

Dagster's `SqliteEventLogStorage` builds a new engine for every write (NullPool): each event of a run opens its
run's database and the index database, compiles its SQL again, and the last close of each checkpoints the WAL.
A refresh run of a small warehouse writes ~400 events (steps, materializations, planned and evaluated asset
checks): 4.0 s of its ~12 s went there (bench/marts_10m.py's floor, timed around `store_event`). Keeping one
engine per recent database, its one connection open, the same 407 events took 1.6 s. Same files, same statements,
same commits (SQLite's synchronous setting untouched): only connections and compiled SQL are reused.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteEventLogStorage
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

# Databases kept open: the index and the runs being written or read (a long-lived webserver or daemon reads
# many runs; each open database holds file descriptors).
OPEN_DATABASES = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` under `$DAGSTER_HOME/history/runs/`, its usual place, with kept connections."""

    def __init__(self, base_dir: str, inst_data=None):  # noqa: ANN001 - Dagster's ConfigurableClassData
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> dict:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:  # noqa: ANN001
        return cls(os.path.join(config_value["dagster_home"], "history", "runs"), inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, most recently used last; the least recently used beyond OPEN_DATABASES closed."""
        engine = self._engines.pop(shard, None)
        if engine is None:
            # One connection per database is enough: the base class serialises every connection on _db_lock.
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_DATABASES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # the base class's one way to a database
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_all()  # before the run databases' files go
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()
