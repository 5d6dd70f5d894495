"""The resources every area shares: the warehouse (one writer at a time) and dbt."""

from __future__ import annotations

import dagster as dg

from orchestration.lib.dbt_project import dbt_cli, leadron_dbt_project
from orchestration.lib.resources import WarehouseResource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource(), "dbt": dbt_cli(leadron_dbt_project())})
