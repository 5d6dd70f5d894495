"""The landing sensor: a mart refresh for the days touched by newly landed batches."""

from __future__ import annotations

import dagster as dg

from leadron import landing
from leadron.settings import get_settings
from orchestration.defs.dbt.jobs import REFRESH_JOB


def landing_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        job_name=REFRESH_JOB,
        minimum_interval_seconds=get_settings().landing_sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts a mart refresh for the days touched by batches landed since the last run.",
    )
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


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=[landing_sensor()])
