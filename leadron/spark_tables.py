"""Spark's build read back into the warehouse file: what the publication and the lead scores read.

dbt on Spark writes each table as Parquet under LEADRON_SPARK_DIR/warehouse/<schema>.db/<table>/. After a
successful build, the marts, the lead features and the staged events (the freshness watermark) are copied
into the DuckDB warehouse with the published types (leadron/portable_types.py), so the publication, the
read API, exports, reports and lead scoring run unchanged whichever engine built the marts.
"""

from __future__ import annotations

import duckdb

from leadron.portable_types import portable_select
from leadron.settings import Settings
from leadron.sql_text import sql_path

# schema -> the tables copied (None: all of them).
COPIED = {"marts": None, "ml": None, "staging": ("stg_leadron__events",)}


def copy_into_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Replace <schema>.<table> in the warehouse with Spark's table of that name; returns rows per table."""
    copied = {}
    for schema, only in COPIED.items():
        folder = settings.spark_dir / "warehouse" / f"{schema}.db"
        tables = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []
        for table in tables:
            if only is not None and table.name not in only:
                continue
            files = sorted(str(f) for f in table.glob("*.parquet"))  # Spark's part files (an empty table has one)
            if not files:
                raise RuntimeError(f"Spark table {schema}.{table.name} has no Parquet file under {table}")
            # The table's name comes from Spark's folder.
            relation = "read_parquet([" + ", ".join(f"'{sql_path(f)}'" for f in files) + "])"
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f'CREATE OR REPLACE TABLE {schema}."{table.name}" AS {portable_select(con, relation)[0]}')
            copied[f"{schema}.{table.name}"] = con.execute(f'SELECT count(*) FROM {schema}."{table.name}"').fetchone()[
                0
            ]
    return copied
