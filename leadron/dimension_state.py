"""Which dimension snapshots the incremental dbt models were last built with.

The incremental models keep rows built in earlier runs; a new dimension snapshot may rewrite history
they hold (a rep's past team, a lead's source). So the dbt step rebuilds from all history whenever the
raw dimensions differ from the last successful build's, and runs incrementally otherwise.
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from leadron import dimensions
from leadron.raw_load import held_snapshots

STATE_SCHEMA, STATE_NAME = "meta", "dbt_dimension_state"
STATE_TABLE = f"{STATE_SCHEMA}.{STATE_NAME}"


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of the snapshot ids each raw dimension table holds (missing tables count as empty)."""
    held = {name: sorted(held_snapshots(con, name)) for name in sorted(dimensions.DIMENSIONS)}
    return hashlib.sha256(json.dumps(held).encode()).hexdigest()


def last_built(con: duckdb.DuckDBPyConnection) -> str | None:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [STATE_SCHEMA, STATE_NAME],
    ).fetchone()[0]
    if not exists:
        return None
    row = con.execute(f"SELECT fingerprint FROM {STATE_TABLE}").fetchone()
    return row[0] if row else None


def record(con: duckdb.DuckDBPyConnection, value: str) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(f"CREATE OR REPLACE TABLE {STATE_TABLE} AS SELECT ? AS fingerprint, now() AS recorded_at", [value])
