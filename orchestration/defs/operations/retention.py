"""Daily upkeep: the retention windows of the metadata store (leadron/retention.py), Dagster's own run history,
and whatever a killed write left half-done. Ticks are pruned by Dagster itself (deploy/dagster.yaml)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from leadron.retention import prune_metadata, remove_stale_partials
from leadron.settings import get_settings

PRUNE_JOB = "prune_history"


def prune_dagster_runs(instance: dg.DagsterInstance, older_than_days: float, now: datetime | None = None) -> int:
    """Delete finished runs (with their event logs) created more than `older_than_days` ago."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    finished = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    records = instance.get_run_records(filters=dg.RunsFilter(created_before=cutoff, statuses=finished))
    for record in records:
        instance.delete_run(record.dagster_run.run_id)
    return len(records)


@dg.op(description="Apply every retention window: exports, report runs, deliveries, Dagster runs, half-writes.")
def prune(context: dg.OpExecutionContext) -> dg.Output:
    settings = get_settings()
    counts = prune_metadata(settings)
    counts["dagster_runs"] = prune_dagster_runs(context.instance, settings.retention_dagster_run_days)
    counts["partial_folders"] = len(remove_stale_partials(settings))
    context.log.info(f"retention: {counts}")
    return dg.Output(counts, metadata={k: dg.MetadataValue.int(v) for k, v in counts.items()})


@dg.job(name=PRUNE_JOB, executor_def=dg.in_process_executor, description="Daily retention of everything kept.")
def prune_history():
    prune()


@dg.definitions
def defs() -> dg.Definitions:
    schedule = dg.ScheduleDefinition(
        job=prune_history,
        cron_schedule="15 2 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return dg.Definitions(jobs=[prune_history], schedules=[schedule])
