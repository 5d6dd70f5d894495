"""`leadron run`: execute the build job in-process, the same job `dagster dev` launches."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import dagster as dg
import duckdb

from leadron import landing, run_ledger
from leadron.settings import Settings
from orchestration.defs.dbt.jobs import BUILD_JOB
from orchestration.defs.ml.jobs import TRAIN_JOB
from orchestration.lib.resources import writer_lock


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    run_id: str
    first_day: date
    last_day: date
    seconds: float
    failed_steps: list[str]
    failed_checks: list[str]
    checks_passed: int


def partition_window(settings: Settings, partition: date | None) -> tuple[date, date]:
    """The days to load: the one asked for, else every day with landed events (else today)."""
    if partition is not None:
        return partition, partition
    days = landing.event_dates(settings)
    if not days:
        today = datetime.now(UTC).date()
        return today, today
    return days[0], days[-1]


def pending_work(settings: Settings) -> run_ledger.Pending:
    """What landed since the last successful run (read under the warehouse's writer lock)."""
    with writer_lock(settings), duckdb.connect(str(settings.warehouse_path)) as con:
        return run_ledger.pending(con, settings)


def pending_window(settings: Settings, pending: run_ledger.Pending) -> tuple[date, date] | None:
    """The event days a run re-derives for `pending`: its first to its last day; the newest landed day when
    only dimension snapshots landed (the models then rebuild from all history); None when nothing landed."""
    if pending.days:
        return pending.days[0], pending.days[-1]
    if pending.items or pending.first_run:
        newest = partition_window(settings, None)[1]
        return newest, newest
    return None


def range_tags(first: date, last: date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


# The local instance: SQLite storage, with the event log keeping its connections (lib/event_log_storage.py).
LOCAL_INSTANCE_YAML = """\
event_log_storage:
  module: orchestration.lib.event_log_storage
  class: PooledSqliteEventLogStorage
  config:
    dagster_home:
      env: DAGSTER_HOME
telemetry:
  enabled: false
"""
_EARLIER_LOCAL_YAML = "telemetry:\n  enabled: false\n"  # what earlier versions wrote: replaced


def ensure_dagster_home(settings: Settings) -> None:
    """DAGSTER_HOME exported, with a dagster.yaml (the local instance unless one, such as deploy/dagster.yaml, is
    there)."""
    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    yaml = settings.dagster_home / "dagster.yaml"
    if not yaml.exists() or yaml.read_text() == _EARLIER_LOCAL_YAML:
        yaml.write_text(LOCAL_INSTANCE_YAML)


def instance_for(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance under DAGSTER_HOME, so `make dev` shows these runs."""
    ensure_dagster_home(settings)
    return dg.DagsterInstance.get()


def run_build(
    settings: Settings,
    partition: date | None = None,
    instance: dg.DagsterInstance | None = None,
    defs: dg.Definitions | None = None,
    log_level: str = "INFO",
    progress: Callable[[str], None] = lambda message: None,
    days: tuple[date, date] | None = None,
    full_refresh: bool = False,
    job_name: str = BUILD_JOB,
    full_tests: bool = False,
) -> RunOutcome:
    """Build every asset for one day (`partition`), a range of days (`days`), or every landed day;
    `full_refresh` rebuilds the incremental models from all history; `full_tests` has the data tests read every
    row, not only the rows the run wrote. `job_name=REFRESH_JOB` runs what the landing sensor runs (no lead
    features or scores)."""
    first, last = days or partition_window(settings, partition)
    progress(f"  launching {job_name} for event days {first}..{last}" + (" (full refresh)" if full_refresh else ""))
    dbt_config = {"full_refresh": full_refresh, "full_tests": full_tests}
    ops = {"dbt_models": {"config": dbt_config}} if any(dbt_config.values()) else None
    return run_job(
        settings, job_name, range_tags(first, last), instance, defs, log_level, progress, window=(first, last), ops=ops
    )


def run_training(
    settings: Settings,
    instance: dg.DagsterInstance | None = None,
    defs: dg.Definitions | None = None,
    log_level: str = "INFO",
    progress: Callable[[str], None] = lambda message: None,
    hyperparameters: dict | None = None,
) -> RunOutcome:
    """Train a lead-score candidate (TrainingConfig fields in `hyperparameters`), promote it if it passes
    its blocking check, and re-score the leads."""
    progress(f"  launching {TRAIN_JOB}")
    today = datetime.now(UTC).date()
    ops = {"ml__lead_score_candidate": {"config": hyperparameters}} if hyperparameters else {}
    return run_job(settings, TRAIN_JOB, {}, instance, defs, log_level, progress, window=(today, today), ops=ops)


def run_job(
    settings: Settings,
    job_name: str,
    tags: dict[str, str],
    instance: dg.DagsterInstance | None,
    defs: dg.Definitions | None,
    log_level: str,
    progress: Callable[[str], None],
    window: tuple[date, date],
    ops: dict | None = None,
) -> RunOutcome:
    """Execute one job of the Definitions in this process and summarise the outcome."""
    from orchestration.definitions import (
        build_definitions,  # parses dbt only when stale
    )

    started = time.perf_counter()
    if defs is None:
        progress("  loading definitions (dbt manifest is parsed only when dbt_project/ changed)")
        defs = build_definitions()
    instance = instance or instance_for(settings)
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance,
        tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}, **({"ops": ops} if ops else {})},
        raise_on_error=False,
    )
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE" and e.step_key]
    checks = result.get_asset_check_evaluations()
    failed_checks = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    return RunOutcome(
        result.success,
        result.run_id,
        window[0],
        window[1],
        time.perf_counter() - started,
        failed,
        failed_checks,
        sum(1 for c in checks if c.passed),
    )
