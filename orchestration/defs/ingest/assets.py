"""Ingest assets: the landing zone into the warehouse's raw schema."""

from datetime import timedelta

import dagster as dg

from leadron import dimensions, raw_load, run_ledger
from leadron.settings import get_settings
from orchestration.lib.partitions import daily_partitions
from orchestration.lib.resources import WarehouseResource

RAW_GROUP = "raw"


def raw_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([raw_load.RAW_SCHEMA, table])


def build_raw_events_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key("events"),
        group_name=RAW_GROUP,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"duckdb", "parquet"},
        description=(
            "Landed events of each UTC day loaded into raw.events, deduplicated on "
            "(tenant_id, event_id) with the first received winning. Re-running a day replaces it."
        ),
    )
    def raw_events(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date()
        context.log.info(f"loading landed events of {start}..{end - timedelta(days=1)} into raw.events")
        settings = warehouse.settings()
        with warehouse.writer() as con:
            load = raw_load.load_events(con, settings, start, end)
            # What this run has read, once it publishes (run_ledger).
            items = [run_ledger.Item.of(settings, path, day) for path, day in load.folders]
            run_ledger.record_loaded(con, context.run.run_id, items)
        context.log.info(
            f"raw.events {start}..{end - timedelta(days=1)}: {load.rows_loaded:,} rows from {load.files} files "
            f"({load.duplicates_dropped:,} duplicates dropped)"
        )
        return dg.MaterializeResult(
            metadata={
                "days": load.days,
                "landing_files": load.files,
                "rows_read": load.rows_read,
                "rows_loaded": dg.MetadataValue.int(load.rows_loaded),
                "duplicates_dropped": load.duplicates_dropped,
            }
        )

    return raw_events


def build_dimension_assets() -> dg.AssetsDefinition:
    """All dimension tables in one step (each is small; one step saves Dagster's per-step overhead)."""
    specs = [
        dg.AssetSpec(
            raw_asset_key(name),
            group_name=RAW_GROUP,
            kinds={"duckdb", "csv"},
            description=f"Every landed snapshot of {name}.csv in raw.{name}; staging reads each tenant's newest.",
        )
        for name in dimensions.DIMENSIONS
    ]

    @dg.multi_asset(specs=specs, can_subset=True, name="raw_dimensions")
    def raw_dimensions(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        settings = warehouse.settings()
        with warehouse.writer() as con:
            for key in sorted(context.selected_asset_keys, key=lambda k: k.path[-1]):
                name = key.path[-1]
                load = raw_load.load_dimension(con, settings, name)
                items = [run_ledger.Item.of(settings, path) for path in load.files]
                run_ledger.record_loaded(con, context.run.run_id, items)
                action = "reloaded" if load.reloaded else "unchanged, kept"
                context.log.info(f"raw.{name}: {load.rows:,} rows from {load.snapshots} snapshot(s), {action}")
                yield dg.MaterializeResult(
                    asset_key=key,
                    metadata={
                        "snapshots": load.snapshots,
                        "rows": dg.MetadataValue.int(load.rows),
                        "latest_snapshot": load.latest_snapshot or "",
                        "reloaded": load.reloaded,
                    },
                )

    return raw_dimensions


def build_raw_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_raw_events_asset(partitions_def), build_dimension_assets()]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=build_raw_assets(daily_partitions(get_settings())))
