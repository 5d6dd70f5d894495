"""Jobs, schedules and sensors that build the warehouse."""

from __future__ import annotations

import dagster as dg

from orchestration import landing
from orchestration.settings import get_settings

BUILD_JOB = "build_warehouse"


def build_warehouse_job() -> dg.UnresolvedAssetJobDefinition:
    # Partitioned like raw/events (inferred from the selection); runs take a day range.
    return dg.define_asset_job(
        BUILD_JOB,
        selection=dg.AssetSelection.all(),
        # In-process: about 0.5 s of overhead per run instead of ~2.3 s per step process (DESIGN.md).
        executor_def=dg.in_process_executor,
        description="Load landed events of the selected days and every dimension, then dbt build (models + tests).",
    )


def daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    # After midnight UTC, close yesterday's partition (late events are picked up by the sensor).
    return dg.build_schedule_from_partitioned_job(job, hour_of_day=0, minute_of_hour=30)


def landing_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Starts a build for the days touched by batches landed since the last run.")
    def new_landing_batches(context: dg.SensorEvaluationContext):
        settings = get_settings()
        batches = [b for b in landing.event_batches(settings) if b > (context.cursor or "")]
        if not batches:
            return dg.SkipReason("no new landing batches")
        days = sorted({d for b in batches for d in landing.batch_dates(settings, b)})
        context.update_cursor(batches[-1])
        return dg.RunRequest(
            run_key=f"landing-{batches[-1]}",
            tags={
                "dagster/asset_partition_range_start": days[0].isoformat(),
                "dagster/asset_partition_range_end": days[-1].isoformat(),
            },
        )

    return new_landing_batches
