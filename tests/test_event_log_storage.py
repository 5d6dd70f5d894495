"""The local Dagster instance's event log (orchestration/lib/event_log_storage.py): Dagster's own SQLite files,
written through kept connections, at most OPEN_DATABASES of them open; a home of an earlier version gets it too."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration.lib.event_log_storage import OPEN_DATABASES, PooledSqliteEventLogStorage
from orchestration.runner import LOCAL_INSTANCE_YAML, ensure_dagster_home, instance_for


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="tiny")])
def tiny():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="positive", passed=True)


def test_runs_write_dagsters_own_files_through_a_bounded_set_of_connections(home, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = instance_for(home)
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)
    job = dg.Definitions(assets=[tiny]).resolve_implicit_global_asset_job_def()
    runs = [job.execute_in_process(instance=instance).run_id for _ in range(OPEN_DATABASES + 2)]
    assert len(storage._engines) == OPEN_DATABASES  # the least recently used run databases were closed
    # Dagster's default storage, opened on the same folder, reads every run's events and the index.
    plain = SqliteEventLogStorage(str(home.dagster_home / "history" / "runs"))
    for run_id in runs:
        kinds = {e.dagster_event.event_type for e in plain.get_logs_for_run(run_id) if e.dagster_event}
        assert {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION} <= kinds
    checks = plain.get_asset_check_execution_history(dg.AssetCheckKey(dg.AssetKey("tiny"), "positive"), limit=100)
    assert len(checks) == len(runs)
    instance.dispose()
    assert not storage._engines


def test_a_home_of_an_earlier_version_gets_the_local_instance(home, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home.dagster_home.mkdir(parents=True)
    yaml = home.dagster_home / "dagster.yaml"
    yaml.write_text("telemetry:\n  enabled: false\n")  # what earlier versions wrote
    ensure_dagster_home(home)
    assert yaml.read_text() == LOCAL_INSTANCE_YAML
    yaml.write_text("storage:\n  postgres: {}\n")  # an operator's own (deploy/dagster.yaml) is never touched
    ensure_dagster_home(home)
    assert yaml.read_text() == "storage:\n  postgres: {}\n"
