"""The one Definitions object (`dagster dev -m orchestration.definitions`, `dg`).

Built lazily by `@dg.definitions`: importing this module reads no settings and parses nothing.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import build_dbt_assets
from orchestration.assets.exports import export_dataset
from orchestration.assets.ml import (
    beats_production_and_baseline,
    lead_score_candidate,
    lead_score_model,
    mart_lead_scores,
)
from orchestration.assets.publish import build_publish_asset
from orchestration.assets.raw import build_raw_assets
from orchestration.assets.reports import (
    deliver_report,
    email_data_team_on_failure,
    report_schedules,
)
from orchestration.dbt_project import dbt_cli, leadron_dbt_project
from orchestration.jobs import (
    build_warehouse_job,
    daily_schedule,
    landing_sensor,
    refresh_marts_job,
    score_drift_sensor,
    train_job,
    weekly_training_schedule,
)
from orchestration.partitions import daily_partitions
from orchestration.resources import WarehouseResource
from leadron.settings import get_settings


def build_definitions() -> dg.Definitions:
    settings = get_settings()
    partitions_def = daily_partitions(settings)
    project = leadron_dbt_project()
    job, refresh, training = build_warehouse_job(), refresh_marts_job(), train_job()
    dbt_models = build_dbt_assets(project)
    marts = sorted((k for k in dbt_models.keys if k.path[0] == "marts"), key=lambda k: k.path) + [mart_lead_scores.key]
    return dg.Definitions(
        assets=[*build_raw_assets(partitions_def), dbt_models, lead_score_candidate, lead_score_model,
                mart_lead_scores, build_publish_asset(marts)],
        asset_checks=[beats_production_and_baseline],
        jobs=[job, refresh, training, export_dataset, deliver_report],
        schedules=[daily_schedule(job), weekly_training_schedule(training)],
        sensors=[landing_sensor(refresh), score_drift_sensor(training), report_schedules, email_data_team_on_failure],
        resources={
            "warehouse": WarehouseResource(),
            "dbt": dbt_cli(project),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
