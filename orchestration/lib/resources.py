"""Resources: the warehouse, with the one-writer rule enforced by a lock file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from filelock import FileLock

from leadron.settings import Settings, get_settings


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """Hold the single-writer lock of the warehouse (waits up to LEADRON_WRITER_LOCK_TIMEOUT).

    DuckDB allows one read-write process per file; this lock makes a second writer
    (another run, `dbt build` started by hand through Dagster) wait instead of failing.
    """
    settings.ensure_dirs()
    with FileLock(str(settings.writer_lock_path), timeout=settings.writer_lock_timeout_s):
        yield


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse at LEADRON_WAREHOUSE_PATH (read from the environment when used)."""

    def settings(self) -> Settings:
        return get_settings()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        settings = self.settings()
        with writer_lock(settings):
            con = duckdb.connect(str(settings.warehouse_path))
            try:
                yield con
            finally:
                con.close()
