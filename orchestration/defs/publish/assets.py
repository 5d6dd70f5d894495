"""The publication asset: after every build, the marts readers may read (leadron/publish.py).

It depends on every mart, so a failed dbt test (an identity check such as unique_opens <= delivered
included) fails the dbt step and this asset does not run: readers keep the last good publication.
"""

import dagster as dg

from leadron import run_ledger
from leadron.publish import publish
from leadron.retention import remove_stale_partials
from orchestration.defs.dbt.assets import dbt_mart_keys
from orchestration.defs.ml.assets import SCORES_KEY
from orchestration.lib.resources import WarehouseResource

PUBLISHED_KEY = dg.AssetKey(["published", "marts"])


def build_publish_asset(mart_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=PUBLISHED_KEY,
        deps=mart_keys,
        group_name="published",
        kinds={"parquet", "duckdb"},
        description="Every mart as Parquet partitioned by tenant (with a manifest: files, rows, schema, "
        "freshness watermark) and a read-only DuckDB copy, swapped in atomically under "
        "$LEADRON_HOME/published/.",
    )
    def published_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        settings = warehouse.settings()
        # What a killed publication, landing write or export left half-written: once per run, before publishing.
        for path in remove_stale_partials(settings):
            context.log.warning(f"removed {path}, left half-written by a killed process")
        with warehouse.writer() as con:
            context.log.info(f"publishing the marts under {settings.publish_dir}")
            publication = publish(con, settings.publish_dir)
            # Published: what this run's raw load read is processed (`leadron run` re-derives the rest).
            processed = run_ledger.mark_processed(con, context.run.run_id)
        context.log.info(
            f"published version {publication.version}: {len(publication.tables)} marts, "
            f"data fresh to {publication.watermark}"
        )
        return dg.MaterializeResult(
            metadata={
                "version": publication.version,
                "data_freshness_watermark": publication.watermark or "no events",
                "duckdb_copy": dg.MetadataValue.path(str(settings.publish_dir / "marts.duckdb")),
                "manifest": dg.MetadataValue.path(str(publication.folder / "manifest.json")),
                "rows": dg.MetadataValue.json(publication.tables),
                "landed_items_processed": processed,
            }
        )

    return published_marts


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_publish_asset([*dbt_mart_keys(), SCORES_KEY])])
