"""Two builds' published tables, read for comparison: the Spark test and bench/engines_demo.py both use it."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

# When each run derived its rows: two builds that ran at different times differ here by design.
RUN_TIME_COLUMNS = {"refreshed_at", "scored_at"}


def published(home: Path) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """Every published table of LEADRON_HOME `home`: (its columns and types, its rows sorted, no run-time column)."""
    with duckdb.connect(str(home / "published" / "marts.duckdb"), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        out = {}
        for table in tables:
            if table == "_publication":
                continue
            columns = [tuple(c[:2]) for c in con.execute(f'DESCRIBE "{table}"').fetchall()]
            kept = ", ".join(f'"{name}"' for name, _ in columns if name not in RUN_TIME_COLUMNS)
            out[table] = (columns, con.execute(f'SELECT {kept} FROM "{table}" ORDER BY ALL').fetchall())
        return out


def same_value(a, b) -> bool:
    """Equal, doubles to 1e-9 relative: Spark and DuckDB add up averages in another order."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b
