"""Training: the weekly job and schedule, and the drift sensor that starts it early."""

from __future__ import annotations

import dagster as dg

from leadron.settings import get_settings

TRAIN_JOB = "train_lead_score_model"
# Training and promotion run weekly (or on drift), not in the daily build; scoring is in both.
TRAINING_ASSETS = dg.AssetSelection.assets(["ml", "lead_score_candidate"], ["ml", "lead_score_model"])
# Features and scores are as of the day: the daily build refreshes them, not every landing batch.
SCORING_ASSETS = dg.AssetSelection.assets(["ml", "ml_lead_features"], ["marts", "mart_lead_scores"])


def train_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        TRAIN_JOB,
        selection=TRAINING_ASSETS | dg.AssetSelection.assets(["marts", "mart_lead_scores"], ["published", "marts"]),
        executor_def=dg.in_process_executor,
        description="Train a lead-score candidate, promote it if it passes the blocking check, re-score every lead "
        "and republish.",
    )


def weekly_training_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    # Mondays 03:00 UTC, after the daily build of 00:30 has refreshed the features.
    return dg.ScheduleDefinition(
        job=job, cron_schedule="0 3 * * 1", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING
    )


def score_drift_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        job=job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Retrains when the latest scores drift from the production model's held-back scores "
        "(population stability index above LEADRON_ML_PSI_THRESHOLD, default 0.2).",
    )
    def lead_score_drift(context: dg.SensorEvaluationContext):
        records = context.instance.fetch_materializations(
            dg.AssetKey(["marts", "mart_lead_scores"]), limit=1, ascending=False
        ).records
        if not records or str(records[0].storage_id) == context.cursor:
            return dg.SkipReason("no new lead scores")
        event = records[0]
        context.update_cursor(str(event.storage_id))
        psi = event.asset_materialization.metadata.get("score_psi_vs_training")
        value = psi.value if psi is not None else None
        threshold = get_settings().ml_psi_threshold
        if not isinstance(value, (int, float)) or value <= threshold:
            return dg.SkipReason(f"score PSI {value} within {threshold}")
        return dg.RunRequest(run_key=f"drift-{event.storage_id}", tags={"leadron/reason": f"score PSI {value}"})

    return lead_score_drift


@dg.definitions
def defs() -> dg.Definitions:
    training = train_job()
    return dg.Definitions(
        jobs=[training], schedules=[weekly_training_schedule(training)], sensors=[score_drift_sensor(training)]
    )
