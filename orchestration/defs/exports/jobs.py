"""The on-demand export job: one dataset, filters and format per run (leadron/exports.py)."""

import dagster as dg

from leadron.exports import ExportRequest, run_export
from leadron.settings import get_settings

EXPORT_JOB = "export_dataset"


class ExportConfig(dg.Config):
    """The export request (see leadron.exports.ExportRequest); export_id lets a caller poll it."""

    tenant_id: str
    dataset: str
    format: str = "csv"
    start: str | None = None  # YYYY-MM-DD, inclusive
    end: str | None = None  # YYYY-MM-DD, exclusive
    workflow_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    include_pii: bool = False
    export_id: str | None = None


@dg.op(
    description="Write the export from the published marts (or the landing zone for raw_events) and "
    "upload it when object storage is configured."
)
def write_export(context: dg.OpExecutionContext, config: ExportConfig) -> dg.Output:
    request = ExportRequest.model_validate(config.model_dump(exclude={"export_id"}))
    result = run_export(get_settings(), request, export_id=config.export_id or context.run.run_id.replace("-", ""))
    context.log.info(f"export {result.export_id}: {result.rows:,} rows -> {result.path}")
    return dg.Output(
        None,
        metadata={
            "export_id": result.export_id,
            "rows": result.rows,
            "path": dg.MetadataValue.path(str(result.path)),
            "object_key": result.object_key or "not uploaded (LEADRON_S3_BUCKET unset)",
            "data_freshness_watermark": result.data_freshness_watermark or "unknown",
        },
    )


@dg.job(
    name=EXPORT_JOB, description="On-demand export of one dataset for one tenant.", executor_def=dg.in_process_executor
)
def export_dataset():
    write_export()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[export_dataset])
