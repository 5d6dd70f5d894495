"""Running it in production: Dagster's instance on PostgreSQL, retention, clean restarts."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa
import yaml

from leadron import metadata
from tests.conftest import FIXTURES, leadron

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_leadron_run_records_its_run_in_dagsters_postgres_instance(postgres, tmp_path):
    """The shipped deploy/dagster.yaml, with DAGSTER_PG_URL pointing at a real PostgreSQL database."""
    database = postgres.new_database()
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "LEADRON_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_URL": postgres.url(database, driver="postgresql+psycopg2"),
    }
    assert leadron("import", str(FIXTURES / "handmade"), env=env).returncode == 0
    run = leadron("run", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    engine = sa.create_engine(postgres.url(database))
    with engine.connect() as con:
        runs = con.execute(sa.text("SELECT pipeline_name, status FROM runs")).all()
    engine.dispose()
    assert ("build_warehouse", "SUCCESS") in [tuple(r) for r in runs]
    assert not (dagster_home / "history").exists()  # nothing went to the SQLite default


# ---- retention ------------------------------------------------------------------------------------------
def test_metadata_retention_windows(metadata_home):
    from leadron import exports, report_store, retention
    from leadron.report_delivery import _record, deliveries
    from leadron.reports import ReportDefinition

    now = datetime(2026, 3, 20, tzinfo=UTC)
    files = {}
    for export_id, finished in (("old", now - timedelta(days=8)), ("new", now - timedelta(days=1))):
        exports.record(metadata_home, export_id, exports.ExportRequest(tenant_id="acme", dataset="fct_events"))
        files[export_id] = metadata_home.home / f"{export_id}.csv"
        files[export_id].write_text("x\n")
        with metadata.engine(metadata_home).begin() as con:
            con.execute(
                metadata.EXPORTS.update()
                .where(metadata.EXPORTS.c.export_id == export_id)
                .values(status="succeeded", path=str(files[export_id]), finished_at=finished.isoformat())
            )
    for report, runs in (("a", 105), ("b", 3)):
        definition = {
            "id": report,
            "name": report,
            "tenant_id": "acme",
            "metrics": ["sent"],
            "dimensions": [],
            "date_range": {"last_days": 7},
        }
        report_store.create_report(metadata_home, ReportDefinition.model_validate(definition))
        for i in range(runs):
            with metadata.engine(metadata_home).begin() as con:
                con.execute(
                    metadata.RUNS.insert().values(
                        run_id=f"{report}{i:03d}",
                        report_id=report,
                        tenant_id="acme",
                        status="succeeded",
                        created_at=(now - timedelta(minutes=runs - i)).isoformat(),
                    )
                )
    for day, delivery in ((400, "ancient"), (10, "recent")):
        due = (now - timedelta(days=day)).isoformat()
        _record(
            metadata_home,
            delivery_id=delivery,
            tenant_id="acme",
            report_id="a",
            schedule_id="s",
            due_at=due,
            status="sent",
        )

    counts = retention.prune_metadata(metadata_home, now)

    assert counts == {"exports": 1, "report_runs": 5, "deliveries": 1}
    assert exports.get_export(metadata_home, "acme", "old") is None and not files["old"].exists()
    assert exports.get_export(metadata_home, "acme", "new") is not None and files["new"].exists()
    with metadata.engine(metadata_home).connect() as con:
        kept = con.execute(sa.select(metadata.RUNS.c.run_id).order_by(metadata.RUNS.c.run_id)).scalars().all()
    assert kept == [f"a{i:03d}" for i in range(5, 105)] + ["b000", "b001", "b002"]  # the newest 100 of a
    assert [d["delivery_id"] for d in deliveries(metadata_home, "acme", "a")] == ["recent"]


def test_api_log_drops_only_batches_sealed_before_the_window(home):
    from api_stub.ingest_log.records import Submission, encode_event
    from api_stub.ingest_log.writer import EventStore
    from api_stub.schemas import ApiEventIn
    from leadron import landing

    store = EventStore(home)
    store.start()
    try:

        def ingest(event_id: str) -> None:
            event = ApiEventIn.model_validate_json(
                json.dumps(
                    {
                        "eventId": event_id,
                        "eventType": "email_open",
                        "messageId": f"m-{event_id}",
                        "timestamp": "2026-03-02T10:00:00.000Z",
                    }
                )
            )
            store.submit(Submission([encode_event(event, "acme", datetime(2026, 3, 2, 10), "api", 0)])).result(30)

        ingest("e-old")
        assert store.seal() == 1
        with sqlite3.connect(home.api_events_path) as con:  # sealed 8 days ago
            con.execute("UPDATE seal_log SET sealed_at = ?", ((datetime.now(UTC) - timedelta(days=8)).isoformat(),))
        ingest("e-new")  # committed, not sealed yet: never dropped
        assert [e["event_id"] for e in store.events_for("acme", "message_id", "m-e-old")] == ["e-old"]

        counts = store.apply_retention()

        assert counts["batches"] == 1 and counts["events"] == 1
        assert store.events_for("acme", "message_id", "m-e-old") == []
        assert [e["event_id"] for e in store.events_for("acme", "message_id", "m-e-new")] == ["e-new"]
        assert store.seal() == 1  # the unsealed batch is still there to land
    finally:
        store.close()
    landed = duckdb.sql(f"SELECT event_id FROM read_parquet('{home.events_landing_dir}/**/*.parquet') ORDER BY 1")
    assert [r[0] for r in landed.fetchall()] == ["e-new", "e-old"]  # the landing zone keeps every event
    assert landing.event_dates(home)


def test_dagster_runs_older_than_the_window_are_deleted():
    from orchestration.defs.operations.retention import prune_dagster_runs

    @dg.op
    def noop():
        return 1

    @dg.job
    def tiny():
        noop()

    instance = dg.DagsterInstance.ephemeral()
    run_id = tiny.execute_in_process(instance=instance).run_id
    assert prune_dagster_runs(instance, 30) == 0  # a new run stays
    assert prune_dagster_runs(instance, 30, now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert instance.get_run_by_id(run_id) is None


def test_the_report_sensor_cursor_forgets_deleted_schedules():
    from leadron.reports import ReportDefinition
    from orchestration.defs.reports.delivery import pending_deliveries

    definition = ReportDefinition.model_validate(
        {
            "id": "r",
            "name": "r",
            "tenant_id": "acme",
            "metrics": ["sent"],
            "dimensions": [],
            "date_range": {"last_days": 7},
            "schedules": [{"id": "kept", "cadence": "daily", "recipients": ["a@b.example"]}],
        }
    )
    cursor = {"r/kept": "2026-03-01T00:00:00+00:00", "r/deleted": "2026-03-01T00:00:00+00:00"}
    _, new_cursor, _ = pending_deliveries([definition], cursor, datetime(2026, 3, 1, 1, tzinfo=UTC), None)
    assert set(new_cursor) == {"r/kept"}


def test_dagster_yaml_keeps_ticks_for_a_bounded_time():
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    sensor = config["retention"]["sensor"]["purge_after_days"]
    assert config["retention"]["schedule"]["purge_after_days"] > 0 and min(sensor.values()) > 0


# ---- clean restarts ---------------------------------------------------------------------------------------
def test_stale_partials_go_and_fresh_ones_stay(home):
    from leadron.retention import remove_stale_partials

    old = [home.publish_dir / "versions" / ".20260101T000000000000Z.partial", home.events_landing_dir / ".tmp-b1"]
    fresh = home.events_landing_dir / ".tmp-b2"
    for path in [*old, fresh]:
        (path / "sub").mkdir(parents=True)
    hour_ago = time.time() - home.stale_partial_s - 60
    for path in old:
        os.utime(path, (hour_ago, hour_ago))
    assert sorted(remove_stale_partials(home)) == sorted(old)
    assert fresh.exists() and not any(p.exists() for p in old)
