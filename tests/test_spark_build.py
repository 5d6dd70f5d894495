"""The same warehouse on Spark: `LEADRON_DBT_TARGET=spark leadron run` publishes what the DuckDB build publishes.

One landing zone (the hand-made fixture with its late file, and a small generated dataset) is built twice,
by the CLI as an operator runs it: on DuckDB, and on local Spark (dbt-spark's session method, one Spark
start). Every published table must have the same columns, types and rows. Doubles are compared to 1e-9
relative: Spark and DuckDB add up averages in another order.
"""

from __future__ import annotations

import math
import os
import shutil

import duckdb
import pytest

from tests.conftest import _HOME_VARS, FIXTURES, leadron
from tests.test_handmade_kpis import COLUMNS, EXPECTED

pytestmark = pytest.mark.slow

# When each run derived its rows: the two builds ran at different times, so these differ by design.
RUN_TIME_COLUMNS = {"refreshed_at", "scored_at"}


def _env(home, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _HOME_VARS and not k.startswith("LEADRON_")}
    # A fixed as-of time: the engagement score decays with it. Small Spark settings for a small dataset.
    return {
        **env,
        "LEADRON_HOME": str(home),
        "LEADRON_AS_OF": "2026-04-01 00:00:00",
        "LEADRON_SPARK_SHUFFLE_PARTITIONS": "1",
        "LEADRON_SPARK_DRIVER_MEMORY": "1g",
        **extra,
    }


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    generated = root / "generated"
    done = leadron("generate", "--out", str(generated), "--events", "3000", "--tenants", "2", "--days", "45",
                   "--end", "2026-03-31", "--seed", "11", env=_env(root / "unused"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    duck, spark = root / "duckdb", root / "spark"
    # The generated data first, so the hand-made dimension snapshots are each tenant's newest.
    for folder in (generated, FIXTURES / "handmade", FIXTURES / "handmade" / "late"):
        done = leadron("import", str(folder), env=_env(duck))
        assert done.returncode == 0, done.stdout + done.stderr
    # The Spark home starts from the same landing zone: the same batches, receipt times and event ids.
    shutil.copytree(duck / "landing", spark / "landing")
    runs = {
        "duckdb": leadron("run", env=_env(duck)),
        "spark": leadron("run", env=_env(spark, LEADRON_DBT_TARGET="spark"), timeout=900),
    }
    for engine, done in runs.items():
        assert done.returncode == 0, f"{engine}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return duck, spark, runs


def published(home) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """Every published table: (its columns and types, its rows sorted)."""
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
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_spark_publishes_the_marts_duckdb_publishes(homes):
    duck, spark, _ = homes
    expected, got = published(duck), published(spark)
    assert sorted(got) == sorted(expected)
    assert {"fct_events", "mart_kpis_daily", "mart_funnel_email", "mart_lead_scores"} <= set(got)
    for table, (columns, rows) in expected.items():
        assert got[table][0] == columns, table
        assert len(got[table][1]) == len(rows), table
        assert len(rows) > 0, table  # every mart holds rows on this data: the comparison compares something
        for mine, theirs in zip(got[table][1], rows):
            assert all(same_value(a, b) for a, b in zip(mine, theirs)), (table, mine, theirs)


def test_spark_build_keeps_the_hand_computed_counts(homes):
    _, spark, _ = homes
    with duckdb.connect(str(spark / "published" / "marts.duckdb"), read_only=True) as con:
        rows = con.execute(
            f"SELECT tenant_id, send_date, workflow_id, step_number, user_id, {', '.join(COLUMNS)} "
            "FROM mart_email_performance_daily WHERE workflow_id IN ('w1', 'gw1')"
        ).fetchall()
    assert {tuple(r[:5]): list(r[5:]) for r in rows} == EXPECTED


def test_spark_tables_are_spark_built(homes):
    # The marts came from Spark's own tables (Parquet under LEADRON_HOME/spark), not from a DuckDB build.
    _, spark, runs = homes
    tables = spark / "spark" / "warehouse"
    assert {p.name for p in (tables / "marts.db").iterdir()} >= {"fct_events", "mart_kpis_daily"}
    assert list((tables / "marts.db" / "mart_kpis_daily").glob("*.parquet"))
    assert not list((spark / "spark" / "raw" / "events").glob(".*"))  # no partial raw file left
    assert "run: succeeded" in runs["spark"].stdout + runs["spark"].stderr
