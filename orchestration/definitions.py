"""The one Definitions object (`dagster dev -m orchestration.definitions`, `dg`).

Built lazily by `@dg.definitions`: importing this module reads no settings and parses nothing.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import build_dbt_assets
from orchestration.assets.raw import build_raw_assets
from orchestration.dbt_project import dbt_cli, leadron_dbt_project
from orchestration.jobs import build_warehouse_job, daily_schedule, landing_sensor
from orchestration.partitions import daily_partitions
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings


def build_definitions() -> dg.Definitions:
    settings = get_settings()
    partitions_def = daily_partitions(settings)
    project = leadron_dbt_project()
    job = build_warehouse_job()
    return dg.Definitions(
        assets=[*build_raw_assets(partitions_def), build_dbt_assets(project)],
        jobs=[job],
        schedules=[daily_schedule(job)],
        sensors=[landing_sensor(job)],
        resources={
            "warehouse": WarehouseResource(),
            "dbt": dbt_cli(project),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
