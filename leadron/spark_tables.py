"""Spark's build read back into the warehouse file: what the publication and the lead scores read.

dbt on Spark writes each table as Parquet under LEADRON_SPARK_DIR/warehouse/<schema>.db/<table>/, and the
marts, the lead features and the staged events (the freshness watermark) once more, unpartitioned and in their
models' column order, under LEADRON_SPARK_DIR/exports/<schema>/<table>/ (macros/export_for_warehouse.sql). After
a successful build, those exports are copied into the DuckDB warehouse with the published types
(leadron/portable_types.py), so the publication, the read API, exports, reports and lead scoring run unchanged
whichever engine built the marts.
"""

from __future__ import annotations

import duckdb

from leadron.portable_types import portable_select
from leadron.settings import Settings
from leadron.sql_text import sql_path


def copy_into_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Replace <schema>.<table> in the warehouse with Spark's table of that name; returns rows per table."""
    copied = {}
    for table in sorted(p for p in (settings.spark_dir / "exports").glob("*/*") if p.is_dir()):
        schema = table.parent.name  # names come from the folders dbt's post-hook wrote
        files = sorted(str(f) for f in table.glob("*.parquet"))  # Spark's part files (an empty table has one)
        if not files:
            raise RuntimeError(f"Spark's export of {schema}.{table.name} has no Parquet file under {table}")
        relation = "read_parquet([" + ", ".join(f"'{sql_path(f)}'" for f in files) + "])"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f'CREATE OR REPLACE TABLE {schema}."{table.name}" AS {portable_select(con, relation)[0]}')
        copied[f"{schema}.{table.name}"] = con.execute(f'SELECT count(*) FROM {schema}."{table.name}"').fetchone()[0]
    return copied
