"""The same warehouse on Spark: `LEADRON_DBT_TARGET=spark leadron run` publishes what the DuckDB build publishes.

One landing zone (the hand-made fixture with its late file, and a small generated dataset) is built twice,
by the CLI as an operator runs it: on DuckDB, and on local Spark (dbt-spark's session method, one Spark
start, every data test). Every published table must have the same columns, types and
rows. Doubles are compared to 1e-9 relative: Spark and DuckDB add
up averages in another order.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import _HOME_VARS, FIXTURES, leadron
from tests.test_handmade_kpis import COLUMNS, EXPECTED

# About three minutes: a JVM, and 178 dbt nodes at Spark's per-query cost. `make test` runs it beside the other tests.
pytestmark = [pytest.mark.slow, pytest.mark.spark]

# When each run derived its rows: the two builds ran at different times, so these differ by design.
RUN_TIME_COLUMNS = {"refreshed_at", "scored_at"}


# A fixed as-of time (the engagement score decays with it); small Spark settings for a small dataset.
ENGINE_ENV = {
    "LEADRON_AS_OF": "2026-04-01 00:00:00",
    "LEADRON_SPARK_SHUFFLE_PARTITIONS": "1",
    "LEADRON_SPARK_DRIVER_MEMORY": "1g",
}


def cli(*args: str, home: Path, **extra: str) -> dict:
    """`leadron ARGS` on `home` with ENGINE_ENV; (args, return code, the output's end)."""
    env = {k: v for k, v in os.environ.items() if k not in _HOME_VARS and not k.startswith("LEADRON_")}
    env["LEADRON_DBT_TARGET_DIR"] = os.environ["LEADRON_DBT_TARGET_DIR"]  # this worker's (tests/conftest.py)
    done = leadron(*args, env={**env, "LEADRON_HOME": str(home), **ENGINE_ENV, **extra}, timeout=1200)
    return {"args": list(args), "returncode": done.returncode, "output": (done.stdout + done.stderr)[-4000:]}


def build_both(root: Path) -> dict:
    generated, duck, spark = root / "generated", root / "duckdb", root / "spark"
    steps = [
        cli("generate", "--out", str(generated), "--events", "3000", "--tenants", "2", "--days", "45",
            "--end", "2026-03-31", "--seed", "11", home=root / "unused"),
    ]  # fmt: skip
    # The generated data first, so the hand-made dimension snapshots are each tenant's newest.
    for folder in (generated, FIXTURES / "handmade", FIXTURES / "handmade" / "late"):
        steps.append(cli("import", str(folder), home=duck))
    # The Spark home starts from the same landing zone: the same batches, receipt times and event ids.
    shutil.copytree(duck / "landing", spark / "landing")
    steps.append(cli("run", home=duck))
    steps.append(cli("run", home=spark, LEADRON_DBT_TARGET="spark"))
    return {"duckdb": str(duck), "spark": str(spark), "steps": steps}


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    result = build_both(tmp_path_factory.mktemp("engines"))
    for step in result["steps"]:
        assert step["returncode"] == 0, step
    return Path(result["duckdb"]), Path(result["spark"]), result["steps"][-1]


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
    _, spark, spark_run = homes
    tables = spark / "spark" / "warehouse"
    assert {p.name for p in (tables / "marts.db").iterdir()} >= {"fct_events", "mart_kpis_daily"}
    assert list((tables / "marts.db" / "mart_kpis_daily").glob("*.parquet"))
    assert not list((spark / "spark" / "raw" / "events").glob(".*"))  # no partial raw file left
    assert spark_run["args"] == ["run"] and "run: succeeded" in spark_run["output"]
