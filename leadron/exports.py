"""On-demand exports for BI tools: a dataset, filters and a format -> a file in the tenant's export folder.

Datasets are the published marts (read from the published read-only copy, never the live warehouse)
and `raw_events` (from the landing zone, deduplicated like raw.events: first received wins). The tenant
filter is always applied; other filters exist only where the dataset has the column; every value is
bound as a parameter and every name comes from the catalog. Text cells starting with = + - @ tab or
CR are prefixed with ' in CSV and XLSX (numbers stay numbers). Personal fields (raw events' ip,
user_agent and properties) are replaced by their SHA-256 unless include_pii is set. A file appears
whole (written aside, then renamed); with LEADRON_S3_BUCKET set it is uploaded and a time-limited
signed URL returned.
"""

from __future__ import annotations

import logging
import os
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import duckdb
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadron import metadata
from leadron.metadata import EXPORTS
from leadron.publish import publication_record, published_copy
from leadron.settings import Settings

log = logging.getLogger("leadron.exports")
INTERNAL = "internal: "  # an error whose details are for the operator (log), not for the tenant
QUEUE_WINDOW = timedelta(hours=1)  # a 'running' export older than this no longer holds a queue place

TenantId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Ident = Annotated[str, Field(min_length=1, max_length=128)]
RAW_EVENTS = "raw_events"
# The date each dataset is filtered on (half-open [start, end)).
DATE_COLUMNS = {
    "mart_kpis_daily": "kpi_date",
    "mart_email_performance_daily": "send_date",
    "mart_activity_daily": "event_date",
    "mart_form_submissions_daily": "submission_date",
    "mart_page_visits_daily": "visit_date",
    "mart_team_performance": "week_start",
    "mart_cohort_retention": "cohort_week",
    "mart_funnel_email": "cohort_week",
    "mart_funnel_web": "cohort_week",
    "mart_lead_scores": "snapshot_date",
    "fct_events": "event_date",
    RAW_EVENTS: "event_date",
}
# Every dataset an export can name: the published marts (those without a date column are exported whole),
# the event grain and the raw events.
DATASETS = tuple(sorted({*DATE_COLUMNS, "mart_lead_engagement", "mart_sequence_steps"}))
FILTER_COLUMNS = {"workflow_id": ("workflow_id", "workflow"), "user_id": ("user_id",), "team_id": ("team_id",)}
PERSONAL = {RAW_EVENTS: ("ip", "user_agent", "properties")}
EXCEL_MAX_ROWS = 1_048_575  # one sheet, one header row
# A spreadsheet runs a cell starting with one of these as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Text that a spreadsheet would run as a formula, made text with a leading quote; others unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value


class ExportError(ValueError):
    """A request that cannot be served; the message names the field."""


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tenant_id: TenantId
    dataset: Ident
    format: Literal["csv", "parquet", "jsonl", "xlsx"] = "csv"
    start: date | None = None
    end: date | None = None
    workflow_id: Ident | None = None
    user_id: Ident | None = None
    team_id: Ident | None = None
    include_pii: bool = False
    upload: bool = True  # to object storage when LEADRON_S3_BUCKET is set

    @model_validator(mode="after")
    def _range(self) -> ExportRequest:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    path: Path
    rows: int
    object_key: str | None  # in the bucket, when uploaded; download URLs are signed on request, never stored
    data_freshness_watermark: str | None


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _raw_events_relation(settings: Settings) -> str:
    files = str(settings.events_landing_dir / "batch=*" / "event_date=*" / "*.parquet").replace("'", "''")
    # First received wins, as in raw.events.
    return (
        f"(SELECT * FROM read_parquet('{files}', hive_partitioning = true, union_by_name = true) "
        "QUALIFY row_number() OVER (PARTITION BY tenant_id, event_id "
        "ORDER BY received_at, batch_id, source, source_line) = 1)"
    )


def export_query(
    con: duckdb.DuckDBPyConnection, request: ExportRequest, settings: Settings, neutralise: bool
) -> tuple[str, list]:
    """The SELECT for a request and its bound parameters (names only from the catalog)."""
    marts = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    }
    if request.dataset == RAW_EVENTS:
        relation = _raw_events_relation(settings)
    elif request.dataset in marts and not request.dataset.startswith("_"):
        relation = _quote(request.dataset)
    else:
        known = sorted(m for m in marts | {RAW_EVENTS} if not m.startswith("_"))
        raise ExportError(f"dataset: unknown dataset {request.dataset!r}; one of {known}")
    columns = _columns(con, relation)
    names = {c for c, _ in columns}
    where, params = ["tenant_id = ?"], [request.tenant_id]
    date_column = DATE_COLUMNS.get(request.dataset)
    for field_name, bound in (("start", ">="), ("end", "<")):
        value = getattr(request, field_name)
        if value is not None:
            if date_column is None:
                raise ExportError(f"{field_name}: dataset {request.dataset} has no date to filter on")
            where.append(f"{_quote(date_column)} {bound} ?")
            params.append(value)
    for field_name, candidates in FILTER_COLUMNS.items():
        value = getattr(request, field_name)
        if value is None:
            continue
        column = next((c for c in candidates if c in names), None)
        if column is None:
            raise ExportError(f"{field_name}: dataset {request.dataset} cannot be filtered by {field_name}")
        where.append(f"{_quote(column)} = ?")
        params.append(value)
    personal = set() if request.include_pii else set(PERSONAL.get(request.dataset, ()))
    select = []
    for name, kind in columns:
        expr = _quote(name)
        if name in personal:
            expr = f"CASE WHEN {expr} IS NULL THEN NULL ELSE sha256(CAST({expr} AS VARCHAR)) END"
        elif neutralise and kind == "VARCHAR":
            # A spreadsheet would run a cell starting with these as a formula: make it text.
            prefixes = ", ".join(f"chr({ord(c)})" for c in FORMULA_PREFIXES)
            expr = f"CASE WHEN left({expr}, 1) IN ({prefixes}) THEN chr(39) || {expr} ELSE {expr} END"
        select.append(f"{expr} AS {_quote(name)}")
    # A total order (date first), so the same request gives the same file; raw events by their id, since
    # their hashed cells would sort differently from the plain ones.
    keys = (
        [date_column, "tenant_id", "event_id"]
        if request.dataset == RAW_EVENTS
        else [date_column, "tenant_id", *(c for c, _ in columns)]
    )
    order = ", ".join(dict.fromkeys(_quote(c) for c in keys if c and c in names))
    return f"SELECT {', '.join(select)} FROM {relation} WHERE {' AND '.join(where)} ORDER BY {order}", params


def record(settings: Settings, export_id: str, request: ExportRequest, queue_limit: int | None = None) -> bool:
    """Record a new running export; False (nothing recorded) when the tenant already has `queue_limit`
    exports running (started within QUEUE_WINDOW: one a crash left 'running' frees its place)."""
    now = datetime.now(UTC)
    with metadata.engine(settings).begin() as con, metadata.locked(con, EXPORTS):
        # count and insert under one write lock (the API workers share the store)
        if queue_limit is not None:
            running = con.execute(
                sa.select(sa.func.count()).where(
                    EXPORTS.c.tenant_id == request.tenant_id,
                    EXPORTS.c.status == "running",
                    EXPORTS.c.created_at > (now - QUEUE_WINDOW).isoformat(),
                )
            ).scalar_one()
            if running >= queue_limit:
                return False
        con.execute(
            EXPORTS.insert().values(
                export_id=export_id,
                tenant_id=request.tenant_id,
                request=request.model_dump_json(),
                status="running",
                created_at=now.isoformat(),
            )
        )
    return True


def public_error(error: str | None) -> str | None:
    """What a tenant is told of a failed export: our own validation messages, else a generic line."""
    if error is None:
        return None
    return "the export failed; the operator has the details" if error.startswith(INTERNAL) else error


def download_url(settings: Settings, stored: dict) -> str | None:
    """A signed GET URL for an uploaded export, valid LEADRON_S3_URL_TTL seconds from now."""
    if stored["status"] != "succeeded" or not stored["object_key"] or not settings.s3_bucket:
        return None
    return _s3(settings).generate_presigned_url(
        "get_object",
        Params={"Bucket": settings.s3_bucket, "Key": stored["object_key"]},
        ExpiresIn=settings.s3_url_ttl_s,
    )


def get_export(settings: Settings, tenant_id: str, export_id: str) -> dict | None:
    """An export of this tenant (another tenant's id reads as missing)."""
    with metadata.engine(settings).connect() as con:
        row = con.execute(
            sa.select(EXPORTS).where(EXPORTS.c.export_id == export_id, EXPORTS.c.tenant_id == tenant_id)
        ).first()
    return dict(row._mapping) if row else None


def _finish(settings: Settings, export_id: str, **values) -> None:
    values["finished_at"] = datetime.now(UTC).isoformat()
    with metadata.engine(settings).begin() as con:
        con.execute(EXPORTS.update().where(EXPORTS.c.export_id == export_id).values(**values))


def run_export(settings: Settings, request: ExportRequest, export_id: str | None = None) -> ExportResult:
    """Write the export file (and upload it); records the outcome in the export store."""
    export_id = export_id or uuid.uuid4().hex
    if get_export(settings, request.tenant_id, export_id) is None:
        record(settings, export_id, request)
    try:
        result = _write(settings, request, export_id)
    except Exception as error:
        if not isinstance(error, ExportError):
            log.exception("export %s failed", export_id)
        _finish(
            settings,
            export_id,
            status="failed",
            error=str(error) if isinstance(error, ExportError) else f"{INTERNAL}{error.__class__.__name__}: {error}",
        )
        raise
    _finish(
        settings,
        export_id,
        status="succeeded",
        rows=result.rows,
        path=str(result.path),
        url=None,
        object_key=result.object_key,
        data_freshness_watermark=result.data_freshness_watermark,
    )
    return result


def _write(settings: Settings, request: ExportRequest, export_id: str) -> ExportResult:
    copy = published_copy(settings.publish_dir)
    if not copy.exists():
        raise ExportError("dataset: nothing is published yet (run the pipeline first)")
    folder = settings.exports_dir / request.tenant_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{export_id}.{request.format}"
    partial = folder / f".{export_id}.{request.format}.partial"
    with closing(duckdb.connect(str(copy), read_only=True)) as con:
        mark = publication_record(con)[2]
        sql, params = export_query(con, request, settings, neutralise=request.format in ("csv", "xlsx"))
        rows = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
        if request.format == "xlsx":
            if rows > EXCEL_MAX_ROWS:
                raise ExportError(f"format: {rows:,} rows do not fit one XLSX sheet; use csv or parquet")
            frame = con.execute(sql, params).df()
            for column in frame.select_dtypes(include=["datetimetz"]).columns:
                frame[column] = frame[column].dt.tz_localize(None)  # Excel has no time zones (values are UTC)
            frame.to_excel(partial, index=False, engine="openpyxl", sheet_name=request.dataset[:31])
        else:
            options = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet", "jsonl": "FORMAT json"}[
                request.format
            ]
            # COPY cannot bind its target; the path is built here from a uuid and a validated tenant id.
            con.execute(f"COPY ({sql}) TO '{str(partial).replace(chr(39), chr(39) * 2)}' ({options})", params)
    os.replace(partial, target)
    key = _upload(settings, target, f"{request.tenant_id}/{target.name}") if request.upload else None
    return ExportResult(export_id, target, int(rows), key, mark)


def _upload(settings: Settings, path: Path, key: str) -> str | None:
    """Upload to the S3-compatible bucket, if one is configured; the object's key."""
    if not settings.s3_bucket:
        return None
    _s3(settings).upload_file(str(path), settings.s3_bucket, key)
    return key


def _s3(settings: Settings):
    import boto3

    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url)


def delete_files(settings: Settings, stored: dict) -> None:
    """An export's file and its uploaded copy (retention: leadron/retention.py)."""
    if stored.get("path"):
        Path(stored["path"]).unlink(missing_ok=True)
    if stored.get("object_key") and settings.s3_bucket:
        _s3(settings).delete_object(Bucket=settings.s3_bucket, Key=stored["object_key"])
