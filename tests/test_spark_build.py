"""The same warehouse on Spark: `LEADRON_DBT_TARGET=spark leadron run` publishes what the DuckDB build publishes.

One landing zone (the hand-made fixture, a small generated dataset, and a message whose second, earlier send
arrives later) is built twice, by the CLI as an operator runs it: on DuckDB in one run after everything landed,
and on local Spark (dbt-spark's session method, every data test) as a sequence: a first run, then the late
files land (late and re-delivered events, the earlier send) and a one-day run re-derives from that day on,
overwriting the tenant partitions it touches and keeping the days before. Every published table must have the
same columns, types and rows. Doubles are compared to 1e-9 relative: Spark and DuckDB add up averages in
another order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.cli import home_env, leadron
from tests.conftest import FIXTURES
from tests.published_tables import published, same_value
from tests.test_handmade_kpis import COLUMNS, EXPECTED

# About three minutes: a JVM, and 178 dbt nodes at Spark's per-query cost. `make test` runs it beside the other tests.
pytestmark = [pytest.mark.slow, pytest.mark.spark]


# A fixed as-of time (the engagement score decays with it); small Spark settings for a small dataset: one
# shuffle partition, no per-query code generation, the JVM's quick compiler only (this file alone: 311 s and
# 290 s with Spark's defaults, 255 s with these, measured one after the other). The quick compiler alone gets a
# 48 MB code cache, which a run of this project's ~130 nodes filled ("Out of space in CodeCache for method
# handle intrinsic", a java.lang.InternalError in a model): 256 MB.
ENGINE_ENV = {
    "LEADRON_AS_OF": "2026-04-08 00:00:00",
    "LEADRON_SPARK_SHUFFLE_PARTITIONS": "1",
    "LEADRON_SPARK_DRIVER_MEMORY": "1g",
    "LEADRON_SPARK_WHOLE_STAGE_CODEGEN": "false",
    "LEADRON_SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m",
}


def cli(*args: str, home: Path, **extra: str) -> dict:
    """`leadron ARGS` on `home` with ENGINE_ENV; (args, return code, the output's end)."""
    done = leadron(*args, env=home_env(home, **ENGINE_ENV, **extra), timeout=1200)
    return {"args": list(args), "returncode": done.returncode, "output": (done.stdout + done.stderr)[-4000:]}


def moved_message(generated: Path, first: Path, late: Path) -> None:
    """A generated lead's new message: sent on 2026-04-02 12:00, after the generated data (alone on its day),
    and opened on 2026-03-02 00:00:01 (human: before the send), into `first`; a second send on 2026-03-02
    00:00:00 (another event id), into `late`: it moves the send to the late files' day, so the old day's
    email-mart rows must go with no new row replacing them, and it makes the open a bot."""
    events = sorted(generated.glob("events-*.jsonl"))[0].read_text().splitlines()
    sent = next(e for e in map(json.loads, events) if e["eventType"] == "email_sent")
    send = {**sent, "eventId": "moved-1", "messageId": "msg-moved", "timestamp": "2026-04-02T12:00:00Z"}
    opened = {**send, "eventType": "email_open", "eventId": "moved-open", "timestamp": "2026-03-02T00:00:01Z"}
    earlier = {**send, "eventId": "moved-0", "timestamp": "2026-03-02T00:00:00Z"}
    for folder, rows in ((first, [send, opened]), (late, [earlier])):
        folder.mkdir()
        (folder / "events-moved.jsonl").write_text("".join(json.dumps(e) + "\n" for e in rows))


def build_both(root: Path) -> dict:
    generated, duck, spark = root / "generated", root / "duckdb", root / "spark"
    steps = [
        cli("generate", "--out", str(generated), "--events", "3000", "--tenants", "2", "--days", "45",
            "--end", "2026-03-31", "--seed", "11", home=root / "unused"),
    ]  # fmt: skip
    moved_message(generated, root / "moved-first", root / "moved-late")
    # The generated data first, so the hand-made dimension snapshots are each tenant's newest.
    for folder in (generated, FIXTURES / "handmade", root / "moved-first"):
        steps.append(cli("import", str(folder), home=duck))
    # The Spark home's landing zone is the DuckDB home's, copied as it grows: the same batches, receipt times
    # and event ids.
    shutil.copytree(duck / "landing", spark / "landing")
    for folder in (FIXTURES / "handmade" / "late", root / "moved-late"):
        steps.append(cli("import", str(folder), home=duck))
    steps.append(cli("run", home=duck))
    steps.append(cli("run", home=spark, LEADRON_DBT_TARGET="spark"))
    shutil.copytree(duck / "landing", spark / "landing", dirs_exist_ok=True)
    # The late files' event day: the run loads that day's raw events and re-derives from three days before it
    # on (lookback_days), keeping earlier days.
    steps.append(cli("run", "--partition", "2026-03-02", home=spark, LEADRON_DBT_TARGET="spark"))
    return {"duckdb": str(duck), "spark": str(spark), "steps": steps}


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    result = build_both(tmp_path_factory.mktemp("engines"))
    for step in result["steps"]:
        assert step["returncode"] == 0, step
    return Path(result["duckdb"]), Path(result["spark"]), result["steps"][-1]


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


def test_spark_tables_are_spark_built_and_partitioned_by_tenant(homes):
    # The marts came from Spark's own tables (Parquet under LEADRON_HOME/spark), not from a DuckDB build; the
    # incremental ones are partitioned by tenant, which the last run overwrote where it re-derived rows.
    _, spark, spark_run = homes
    tables = spark / "spark" / "warehouse"
    assert {p.name for p in (tables / "marts.db").iterdir()} >= {"fct_events", "mart_kpis_daily"}
    assert {p.name for p in (tables / "marts.db" / "fct_events").glob("tenant_id=*")} >= {"tenant_id=acme-corp"}
    assert list((tables / "marts.db" / "mart_kpis_daily").glob("tenant_id=*/*.parquet"))
    assert not list((spark / "spark" / "raw" / "events").glob(".*"))  # no partial raw file left
    assert spark_run["args"] == ["run", "--partition", "2026-03-02"] and "run: succeeded" in spark_run["output"]


def test_the_moved_send_left_its_old_day_on_spark(homes):
    # Re-derived by the Spark run that received the earlier send: the open turned bot, and the old send day's
    # email-mart row went (else the marts would count the message's send twice).
    _, spark, _ = homes
    with duckdb.connect(str(spark / "published" / "marts.duckdb"), read_only=True) as con:
        bots = con.execute("SELECT is_bot FROM fct_events WHERE event_id = 'moved-open'").fetchall()
        sent = con.execute("SELECT sum(sent) FROM mart_email_performance_daily").fetchone()[0]
        old_day = con.execute(
            "SELECT count(*) FROM mart_email_performance_daily WHERE send_date = '2026-04-02'"
        ).fetchone()[0]
        messages = con.execute(
            "SELECT count(DISTINCT (tenant_id, message_id)) FROM fct_events WHERE event_type = 'email_sent'"
        ).fetchone()[0]
    assert bots == [(True,)]
    assert sent == messages
    assert old_day == 0
