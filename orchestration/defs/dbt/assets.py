"""dbt models as Dagster assets; dbt tests as asset checks; sources linked to raw assets."""

from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from leadron import dimension_state, spark_tables
from leadron.settings import dbt_env, exported, get_settings
from orchestration.lib.dbt_project import leadron_dbt_project
from orchestration.lib.resources import writer_lock


class LeadronDbtTranslator(DagsterDbtTranslator):
    """Keys by warehouse layer: sources -> raw/<table>, models -> <folder>/<name>, seeds -> reference/<name>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        kind = dbt_resource_props["resource_type"]
        if kind == "source":
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        if kind == "seed":
            return dg.AssetKey(["reference", dbt_resource_props["name"]])
        return dg.AssetKey([layer_of(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return layer_of(dbt_resource_props)


def layer_of(dbt_resource_props: Mapping[str, Any]) -> str:
    """staging / intermediate / marts: the folder under models/."""
    fqn = dbt_resource_props.get("fqn", [])
    return fqn[1] if len(fqn) > 2 else "models"


class DbtBuildConfig(dg.Config):
    """Run configuration of the dbt step (launchpad: ops.dbt_models.config)."""

    full_refresh: bool = False  # rebuild the incremental models from all history (after a dimension edit)
    full_tests: bool = False  # data tests read every row, not only the rows this run wrote


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """The dbt command an asset run issues (pure, so it is unit-tested); the asset selection is added by dagster-dbt.

    No --vars: the run's window and as-of time reach dbt as environment variables (window_env, dbt_env),
    because changed --vars make dbt re-parse the whole project (~10 s a run here, measured).
    """
    # Unit tests check the SQL, not the data: pytest runs them (tests/test_generated_pipeline.py), not each
    # production run (dbt's advice; about 1.8 s a run here).
    args = ["build", "--exclude-resource-type", "unit_test"]
    return [*args, "--full-refresh"] if full_refresh else args


def window_env(window: tuple[date, date] | None) -> dict[str, str]:
    """The run's event-day window for dbt, as environment variables (empty: no window, the model decides).
    A changed env_var() only re-parses the files that read it."""
    first, last = (window[0].isoformat(), window[1].isoformat()) if window else ("", "")
    return {"LEADRON_DBT_MIN_DATE": first, "LEADRON_DBT_MAX_DATE": last}


def data_test_rows(
    window: tuple[date, date] | None, full_refresh: bool, full_tests: bool, tags: Mapping[str, str]
) -> str:
    """What the run's data tests read (LEADRON_DBT_TESTED_ROWS, macros/tested_rows.sql): `written` (the rows of
    the run's window) for an incremental run; `all` for a full refresh, a run without a window, when asked, and
    for the scheduled daily build, which checks the whole tables once a day."""
    whole = full_refresh or full_tests or window is None or "dagster/schedule_name" in tags
    return "all" if whole else "written"


def unread_results(run_results: Mapping[str, Any], outputs: int) -> int:
    """How many models and seeds dbt reports built beyond the `outputs` Dagster read from its events."""
    built = sum(
        1
        for r in run_results.get("results", [])
        if r["unique_id"].split(".")[0] in ("model", "seed") and r["status"] == "success"
    )
    return max(0, built - outputs)


def run_window(tags: Mapping[str, str]) -> tuple[date, date] | None:
    """The event days a run covers, from its partition-range tags (none for an unpartitioned run)."""
    first, last = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if first and last:
        return date.fromisoformat(first), date.fromisoformat(last)
    key = tags.get("dagster/partition")
    return (date.fromisoformat(key), date.fromisoformat(key)) if key else None


@cache
def build_dbt_assets(project: DbtProject) -> dg.AssetsDefinition:
    """Every dbt model as an asset and every test as a check, in one dbt invocation per run.

    The run's event-day window (its partition range) goes to dbt as LEADRON_DBT_MIN_DATE/MAX_DATE
    (window_env): the incremental event model re-derives those days (minus a lookback) and keeps the rest. One
    unpartitioned invocation rather than daily-partitioned dbt assets: with a year of partitions,
    the per-partition materialization records of a partitioned dbt asset cost about a minute per
    run here (measured), against seconds of SQL.
    """
    translator = LeadronDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=True)
    )

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=translator, name="dbt_models")
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
        settings = get_settings()
        window = run_window(context.run.tags)
        with writer_lock(settings):
            with duckdb.connect(str(settings.warehouse_path)) as con:
                dimensions_now = dimension_state.fingerprint(con)
                dimensions_changed = dimension_state.last_built(con) != dimensions_now
            full_refresh = config.full_refresh or dimensions_changed
            if dimensions_changed and not config.full_refresh:
                context.log.info("dimension snapshots differ from the last build's: rebuilding from all history")
            tested = data_test_rows(window, full_refresh, config.full_tests, context.run.tags)
            context.log.info(f"data tests read {'the rows this run wrote' if tested == 'written' else 'every row'}")
            # dbt runs as a subprocess that inherits the environment: hand it the warehouse path this process
            # resolved, the run's window and what its tests read, and put the environment back afterwards.
            # The project's own target folder (not a fresh one per run) keeps dbt's partial parse.
            with exported({**dbt_env(settings), **window_env(window), "LEADRON_DBT_TESTED_ROWS": tested}):
                invocation = dbt.cli(dbt_build_args(full_refresh), context=context, target_path=project.target_path)
                outputs = 0
                for event in invocation.stream():
                    outputs += isinstance(event, dg.Output)
                    yield event
            unread = unread_results(invocation.get_artifact("run_results.json"), outputs)
            if unread:
                # dagster-dbt reads dbt's events from its output; a garbled line loses one, and the assets
                # after it would be skipped while the run reads as a success.
                raise dg.Failure(f"dbt built {unread} more models and seeds than Dagster read events for")
            with duckdb.connect(str(settings.warehouse_path)) as con:  # only after a successful build
                if not settings.raw_in_warehouse:
                    copied = spark_tables.copy_into_warehouse(con, settings)
                    context.log.info(
                        f"copied {len(copied)} Spark tables into the warehouse: {sum(copied.values()):,} rows"
                    )
                dimension_state.record(con, dimensions_now)

    return dbt_models


def dbt_mart_keys() -> list[dg.AssetKey]:
    """The dbt marts (what the publication depends on), in a stable order."""
    models = build_dbt_assets(leadron_dbt_project())
    return sorted((k for k in models.keys if k.path[0] == "marts"), key=lambda k: k.path)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_dbt_assets(leadron_dbt_project())])
