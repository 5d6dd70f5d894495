"""Deliver one scheduled report: run it on the published copy, render it, e-mail it, record the delivery."""

from __future__ import annotations

import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import sqlalchemy as sa

from leadron import metadata
from leadron.mailer import SmtpSettings, build_message, send
from leadron.metadata import DELIVERIES
from leadron.publish import publication_record, published_copy
from leadron.report_schedules import ReportSchedule
from leadron.report_store import all_definitions
from leadron.reports import ReportDefinition, build_query, run_headlines, run_report
from leadron.settings import Settings

MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "html": "text/html",
}


@dataclass(frozen=True)
class Publication:
    version: str
    published_at: datetime
    watermark: str | None


def current_publication(settings: Settings) -> Publication | None:
    copy = published_copy(settings.publish_dir)
    if not copy.exists():
        return None
    with closing(duckdb.connect(str(copy), read_only=True)) as con:
        return _publication(con)


def _publication(con: duckdb.DuckDBPyConnection) -> Publication:
    version, published_at, mark = publication_record(con)
    return Publication(version, datetime.fromisoformat(published_at), mark)


def find_schedule(settings: Settings, report_id: str, schedule_id: str) -> tuple[ReportDefinition, ReportSchedule]:
    for definition in all_definitions(settings):
        if definition.id == report_id:
            for raw in definition.schedules:
                schedule = ReportSchedule.model_validate(raw)
                if schedule.id == schedule_id:
                    return definition, schedule
    raise LookupError(f"report {report_id!r} has no schedule {schedule_id!r} in {settings.reports_dir}")


def public_delivery_error(error: str | None) -> str | None:
    """What a tenant is told of a failed delivery (the details stay in the store and the run's log)."""
    return None if error is None else "the delivery failed; the operator has the details"


def _where(tenant_id: str, report_id: str, schedule_id: str | None) -> list:
    where = [DELIVERIES.c.tenant_id == tenant_id, DELIVERIES.c.report_id == report_id]
    if schedule_id is not None:
        where.append(DELIVERIES.c.schedule_id == schedule_id)
    return where


def deliveries(settings: Settings, tenant_id: str, report_id: str, schedule_id: str | None = None) -> list[dict]:
    """A report's deliveries (of one schedule when given), oldest first."""
    query = sa.select(DELIVERIES).where(*_where(tenant_id, report_id, schedule_id))
    with metadata.engine(settings).connect() as con:
        rows = con.execute(query.order_by(DELIVERIES.c.due_at, DELIVERIES.c.sent_at, DELIVERIES.c.delivery_id))
        return [dict(r._mapping) for r in rows]


def delivery_page(
    settings: Settings, tenant_id: str, report_id: str, schedule_id: str, offset: int, limit: int
) -> tuple[list[dict], int]:
    """One page of a schedule's deliveries, newest first, and how many there are (paged in the store)."""
    where = _where(tenant_id, report_id, schedule_id)
    newest = (DELIVERIES.c.due_at.desc(), DELIVERIES.c.sent_at.desc(), DELIVERIES.c.delivery_id.desc())
    with metadata.engine(settings).connect() as con:
        total = con.execute(sa.select(sa.func.count()).select_from(DELIVERIES).where(*where)).scalar_one()
        rows = con.execute(sa.select(DELIVERIES).where(*where).order_by(*newest).offset(offset).limit(limit))
        return [dict(r._mapping) for r in rows], total


def _record(settings: Settings, **row) -> None:
    with metadata.engine(settings).begin() as con:
        con.execute(DELIVERIES.insert().values(**row))


def record_failure(settings: Settings, tenant_id: str, report_id: str, schedule_id: str, error: str) -> None:
    """A schedule the sensor could not evaluate, as a failed delivery its owner sees in the history."""
    now = datetime.now(UTC).isoformat()
    _record(
        settings,
        delivery_id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        report_id=report_id,
        schedule_id=schedule_id,
        due_at=now,
        status="failed",
        error=error,
        sent_at=now,
    )


def deliver(
    settings: Settings,
    definition: ReportDefinition,
    schedule: ReportSchedule,
    due: datetime,
    smtp: SmtpSettings | None = None,
    attempts: int = 3,
    backoff_s: float = 2.0,
) -> dict:
    """Send the report due at `due`; returns the delivery record (status sent / skipped). A failure is
    recorded and raised, never dropped."""
    base = {
        "delivery_id": uuid.uuid4().hex,
        "tenant_id": definition.tenant_id,
        "report_id": definition.id,
        "schedule_id": schedule.id,
        "due_at": due.astimezone(UTC).isoformat(),
        "recipients": ", ".join(schedule.recipients),
        "formats": ", ".join(schedule.formats),
    }
    try:
        copy = published_copy(settings.publish_dir)
        if not copy.exists():
            raise LookupError("nothing is published yet")
        query = build_query(definition, due)
        with closing(duckdb.connect(str(copy), read_only=True)) as con:
            publication = _publication(con)
            rows = run_report(con, definition, due)
            headlines = run_headlines(con, definition, due)
        base |= {
            "rows": len(rows),
            "data_freshness_watermark": publication.watermark,
            "publication_version": publication.version,
        }
        if not rows and schedule.skip_when_empty:
            record = {**base, "status": "skipped"}
            _record(settings, **record)
            return record
        period = f"{query.start.isoformat()} to {(query.end - timedelta(days=1)).isoformat()}"
        subject = f"{definition.name}: {period}"
        footer = (
            f"Data fresh to {publication.watermark or 'unknown'} UTC (publication {publication.version}). "
            f"Sent by Leadron Analytics for schedule {schedule.id}."
        )
        columns = query.columns
        days = (query.end - query.start).days
        from leadron import report_render as render  # matplotlib: ~1 s that every Dagster process load paid

        png = render.chart_png(definition, rows)
        html = render.to_html(
            definition,
            rows,
            columns,
            period,
            footer,
            chart_src="cid:chart" if png else None,
            headlines=headlines,
            period_days=days,
        )
        # The plain-text part leads with the headline numbers: what a phone's preview shows.
        text = "\n".join(
            [
                subject,
                "",
                *render.headline_lines(headlines, days),
                "",
                "\t".join(render.label(c) for c in columns),
                *("\t".join(render.cell(c, r[c]) for c in columns) for r in rows),
                "",
                footer,
            ]
        )
        files = {
            "csv": lambda: render.to_csv(rows, columns),
            "xlsx": lambda: render.to_xlsx(rows, columns, definition.id),
            "pdf": lambda: render.to_pdf(definition, rows, columns, period, headlines, days),
            "html": lambda: render.to_html(
                definition, rows, columns, period, footer, headlines=headlines, period_days=days
            ).encode(),
        }
        attachments = [
            (f"{definition.id}-{query.end.isoformat()}.{fmt}", MIME[fmt], files[fmt]()) for fmt in schedule.formats
        ]
        smtp = smtp or SmtpSettings.from_env()
        message = build_message(smtp.sender, schedule.recipients, subject, html, text, png, attachments)
        send(message, smtp, attempts=attempts, backoff_s=backoff_s)
    except Exception as error:
        _record(
            settings,
            **base,
            status="failed",
            error=f"{error.__class__.__name__}: {error}",
            sent_at=datetime.now(UTC).isoformat(),
        )
        raise
    record = {**base, "status": "sent", "subject": subject, "sent_at": datetime.now(UTC).isoformat()}
    _record(settings, **record)
    return record
