"""Loading the landing zone into the warehouse's `raw` schema (what the ingest assets run).

Plain functions over a DuckDB connection so they are testable without Dagster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from leadron import dimensions, landing
from leadron.settings import Settings
from leadron.sql_text import sql_path

RAW_SCHEMA = "raw"


def _create_like(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema) -> None:
    # The DDL comes from the Arrow schema the landing zone writes: one definition of the columns.
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    empty = schema.empty_table()
    con.register("_empty_like", empty)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{table} AS "
        "SELECT *, CAST(NULL AS TIMESTAMP) AS loaded_at FROM _empty_like"
    )
    con.unregister("_empty_like")


@dataclass(frozen=True)
class EventLoad:
    days: int
    files: int
    rows_read: int
    rows_loaded: int
    folders: tuple[tuple[Path, date], ...] = ()  # the landing folders read: (batch's day folder, day)

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_read - self.rows_loaded


def days_in(start: date, end_exclusive: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end_exclusive - start).days)]


# The rows raw.events holds for the window [?, ?) of the landed files ?: deduplicated on (tenant_id, event_id),
# the first received winning, with load metadata. One statement for both sinks (warehouse table, Parquet).
_DEDUPLICATED_EVENTS = """
    SELECT * EXCLUDE (arrival_rank), now()::TIMESTAMP AS loaded_at
    FROM (
        SELECT *, row_number() OVER (
            PARTITION BY tenant_id, event_id ORDER BY received_at, batch_id, source, source_line
        ) AS arrival_rank
        FROM read_parquet($files, hive_partitioning = false)
        WHERE event_date >= $start AND event_date < $end
    )
    WHERE arrival_rank = 1
    ORDER BY event_date, tenant_id, occurred_at, event_id
"""


def load_events(con: duckdb.DuckDBPyConnection, settings: Settings, start: date, end_exclusive: date) -> EventLoad:
    """Replace raw.events for [start, end) with the landed events of those days: the warehouse's table on
    DuckDB, else one Parquet file per day under LEADRON_RAW_PARQUET_DIR/events (what Spark reads).

    Idempotent: the same landing gives the same rows. Within the window, a second
    (tenant_id, event_id) is dropped; the first received wins.
    """
    folders = tuple(landing.event_folders(settings, days_in(start, end_exclusive)))
    files = landing.folder_files(folders)
    window = {"files": files, "start": start, "end": end_exclusive}
    rows_read = (
        con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [files]).fetchone()[0]
        if files
        else 0
    )
    if not settings.raw_in_warehouse:
        rows_loaded = _events_to_parquet(con, settings, window)
        return EventLoad((end_exclusive - start).days, len(files), rows_read, rows_loaded, folders)
    _create_like(con, "events", landing.EVENT_SCHEMA)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {RAW_SCHEMA}.events WHERE event_date >= ? AND event_date < ?", [start, end_exclusive])
        rows_loaded = 0
        if files:
            con.execute(f"INSERT INTO {RAW_SCHEMA}.events {_DEDUPLICATED_EVENTS}", window)
            rows_loaded = con.execute(
                f"SELECT count(*) FROM {RAW_SCHEMA}.events WHERE event_date >= ? AND event_date < ?",
                [start, end_exclusive],
            ).fetchone()[0]
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return EventLoad((end_exclusive - start).days, len(files), rows_read, rows_loaded, folders)


def _events_to_parquet(con: duckdb.DuckDBPyConnection, settings: Settings, window: dict) -> int:
    """raw.events of the window as events/<day>.parquet, each day replaced in one rename (a reader sees the old
    file or the new one); a day left without events loses its file."""
    folder = settings.raw_parquet_dir / "events"
    folder.mkdir(parents=True, exist_ok=True)
    if window["files"]:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _raw_events AS {_DEDUPLICATED_EVENTS}", window)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _raw_events AS SELECT NULL::DATE AS event_date LIMIT 0")
    loaded = dict(con.execute("SELECT event_date, count(*) FROM _raw_events GROUP BY 1").fetchall())
    for day in days_in(window["start"], window["end"]):
        target = folder / f"{day.isoformat()}.parquet"
        if day not in loaded:
            target.unlink(missing_ok=True)
            continue
        partial = folder / f".{day.isoformat()}.parquet.partial"  # hidden: Spark skips dot files
        con.execute(
            f"COPY (SELECT * FROM _raw_events WHERE event_date = ?) TO '{sql_path(partial)}' (FORMAT parquet)", [day]
        )
        os.replace(partial, target)
    con.execute("DROP TABLE _raw_events")
    return sum(loaded.values())


@dataclass(frozen=True)
class DimensionLoad:
    files: tuple[str, ...]  # the landed snapshot files read
    rows: int
    latest_snapshot: str | None
    reloaded: bool = True

    @property
    def snapshots(self) -> int:
        return len(self.files)


def _snapshot_id(path: str) -> str:
    return path.rsplit("snapshot=", 1)[1].removesuffix(".parquet")


def raw_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """Columns of raw.<name> in order; empty when the table is missing."""
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [RAW_SCHEMA, name],
        ).fetchall()
    ]


def held_snapshots(con: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    """Snapshot ids raw.<name> holds (empty when the table is missing)."""
    if not raw_columns(con, name):
        return set()
    return {r[0] for r in con.execute(f"SELECT DISTINCT snapshot_id FROM {RAW_SCHEMA}.{name}").fetchall()}


def load_dimension(con: duckdb.DuckDBPyConnection, settings: Settings, name: str) -> DimensionLoad:
    """Rebuild raw.<name> from every landed snapshot (history kept; staging picks the newest).
    Skipped when raw.<name> already holds exactly the landed snapshots (most runs: a few seconds saved)."""
    schema = (
        dimensions.arrow_schema(name)
        .append(pa.field("snapshot_id", pa.string()))
        .append(pa.field("snapshot_at", pa.timestamp("us")))
    )
    files = landing.dimension_snapshots(settings, name)
    latest = _snapshot_id(files[-1]) if files else None
    if not settings.raw_in_warehouse:
        return _dimension_to_parquet(con, settings, name, schema, files, latest)
    same_columns = raw_columns(con, name) == [*schema.names, "loaded_at"]
    if files and same_columns and held_snapshots(con, name) == {_snapshot_id(f) for f in files}:
        rows = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{name}").fetchone()[0]
        return DimensionLoad(tuple(files), rows, latest, reloaded=False)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA}.{name}")
        _create_like(con, name, schema)
        if files:
            con.execute(f"INSERT INTO {RAW_SCHEMA}.{name} {_snapshots_select(schema)}", [files])
        rows = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{name}").fetchone()[0]
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return DimensionLoad(tuple(files), rows, latest)


def _snapshots_select(schema: pa.Schema) -> str:
    """Every landed snapshot (files: the one parameter) with snapshot_at, when it landed, from its id
    (landing.new_batch_id: YYYYmmddTHHMMSSffffffZ-...), and loaded_at."""
    cols = ", ".join(schema.names[:-1])
    return (
        f"SELECT {cols}, strptime(split_part(snapshot_id, '-', 1), '%Y%m%dT%H%M%S%fZ') AS snapshot_at, "
        "now()::TIMESTAMP AS loaded_at FROM read_parquet(?, union_by_name = true)"
    )


def _dimension_to_parquet(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    name: str,
    schema: pa.Schema,
    files: list[str],
    latest: str | None,
) -> DimensionLoad:
    """raw.<name> as <name>/data.parquet (the same rows as the warehouse table), replaced in one rename;
    kept when it already holds exactly the landed snapshots."""
    folder = settings.raw_parquet_dir / name
    target = folder / "data.parquet"
    if target.exists() and files:
        same = [c[0] for c in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(target)]).fetchall()]
        if same == [*schema.names, "loaded_at"]:
            held, rows = con.execute(
                "SELECT list(DISTINCT snapshot_id), count(*) FROM read_parquet(?)", [str(target)]
            ).fetchone()
            if set(held or []) == {_snapshot_id(f) for f in files}:
                return DimensionLoad(tuple(files), rows, latest, reloaded=False)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / ".data.parquet.partial"
    if files:
        con.execute(f"COPY ({_snapshots_select(schema)}) TO '{sql_path(partial)}' (FORMAT parquet)", [files])
    else:
        con.register("_empty_like", schema.empty_table())
        con.execute(
            f"COPY (SELECT *, NULL::TIMESTAMP AS loaded_at FROM _empty_like) TO '{sql_path(partial)}' (FORMAT parquet)"
        )
        con.unregister("_empty_like")
    os.replace(partial, target)
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(target)]).fetchone()[0]
    return DimensionLoad(tuple(files), rows, latest)
