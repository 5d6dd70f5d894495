"""Reports, their schedules and their runs created through the API, in the metadata store.

The tables live in leadron/metadata.py (LEADRON_METADATA_URL: SQLite or PostgreSQL). Every read and write is
scoped by tenant: another tenant's id reads as missing. The Dagster schedule sensor reads `all_definitions`,
which joins these reports (with their schedules) to the YAML-defined ones, so both are delivered by the same
machinery.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from leadron.metadata import REPORTS, RUNS, SCHEDULES, engine, locked
from leadron.report_schedules import MAX_SCHEDULES_PER_TENANT, ReportSchedule
from leadron.reports import ReportDefinition, load_definitions
from leadron.settings import Settings

log = logging.getLogger("leadron.reports")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# ---- reports ------------------------------------------------------------------------------------
def _definition(row: Any, schedules: list[dict] | None = None) -> ReportDefinition:
    data = json.loads(row.definition)
    return ReportDefinition.model_validate({**data, "schedules": schedules or []})


def _stored(definition: ReportDefinition) -> str:
    return definition.model_dump_json(exclude={"schedules"})


def create_report(settings: Settings, definition: ReportDefinition) -> dict:
    now = _now()
    with engine(settings).begin() as con:
        con.execute(
            REPORTS.insert().values(
                report_id=definition.id,
                tenant_id=definition.tenant_id,
                definition=_stored(definition),
                created_at=now,
                updated_at=now,
            )
        )
    return {"definition": definition, "created_at": now, "updated_at": now}


def get_report(settings: Settings, tenant_id: str, report_id: str) -> dict | None:
    with engine(settings).connect() as con:
        row = con.execute(
            sa.select(REPORTS).where(REPORTS.c.tenant_id == tenant_id, REPORTS.c.report_id == report_id)
        ).first()
    return {"definition": _definition(row), "created_at": row.created_at, "updated_at": row.updated_at} if row else None


def list_reports(settings: Settings, tenant_id: str, offset: int, limit: int) -> tuple[list[dict], int]:
    where = REPORTS.c.tenant_id == tenant_id
    with engine(settings).connect() as con:
        total = con.execute(sa.select(sa.func.count()).select_from(REPORTS).where(where)).scalar_one()
        rows = con.execute(
            sa.select(REPORTS)
            .where(where)
            .order_by(REPORTS.c.created_at, REPORTS.c.report_id)
            .offset(offset)
            .limit(limit)
        ).all()
    return [{"definition": _definition(r), "created_at": r.created_at, "updated_at": r.updated_at} for r in rows], total


def update_report(settings: Settings, definition: ReportDefinition) -> bool:
    with engine(settings).begin() as con:
        changed = con.execute(
            REPORTS.update()
            .where(REPORTS.c.tenant_id == definition.tenant_id, REPORTS.c.report_id == definition.id)
            .values(definition=_stored(definition), updated_at=_now())
        ).rowcount
    return changed == 1


def delete_report(settings: Settings, tenant_id: str, report_id: str) -> bool:
    """The report, its schedules and its runs (deliveries already made stay in the delivery log)."""
    with engine(settings).begin() as con:
        changed = con.execute(
            REPORTS.delete().where(REPORTS.c.tenant_id == tenant_id, REPORTS.c.report_id == report_id)
        ).rowcount
        if changed:
            for table in (SCHEDULES, RUNS):
                con.execute(table.delete().where(table.c.tenant_id == tenant_id, table.c.report_id == report_id))
    return changed == 1


# ---- schedules ----------------------------------------------------------------------------------
def _schedule(row: Any) -> dict:
    return {
        "schedule": ReportSchedule.model_validate_json(row.schedule),
        "report_id": row.report_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class ScheduleLimitError(ValueError):
    """The tenant has MAX_SCHEDULES_PER_TENANT schedules already."""


def create_schedule(settings: Settings, tenant_id: str, report_id: str, schedule: ReportSchedule) -> dict:
    now = _now()
    with engine(settings).begin() as con, locked(con, SCHEDULES):  # count and insert atomically
        count = con.execute(
            sa.select(sa.func.count()).select_from(SCHEDULES).where(SCHEDULES.c.tenant_id == tenant_id)
        ).scalar_one()
        if count >= MAX_SCHEDULES_PER_TENANT:
            raise ScheduleLimitError(f"schedules: a tenant has at most {MAX_SCHEDULES_PER_TENANT} schedules")
        con.execute(
            SCHEDULES.insert().values(
                schedule_id=schedule.id,
                report_id=report_id,
                tenant_id=tenant_id,
                schedule=schedule.model_dump_json(),
                created_at=now,
                updated_at=now,
            )
        )
    return {"schedule": schedule, "report_id": report_id, "created_at": now, "updated_at": now}


def _schedule_where(tenant_id: str, report_id: str, schedule_id: str | None = None):
    clauses = [SCHEDULES.c.tenant_id == tenant_id, SCHEDULES.c.report_id == report_id]
    if schedule_id is not None:
        clauses.append(SCHEDULES.c.schedule_id == schedule_id)
    return sa.and_(*clauses)


def list_schedules(settings: Settings, tenant_id: str, report_id: str) -> list[dict]:
    with engine(settings).connect() as con:
        rows = con.execute(
            sa.select(SCHEDULES)
            .where(_schedule_where(tenant_id, report_id))
            .order_by(SCHEDULES.c.created_at, SCHEDULES.c.schedule_id)
        ).all()
    return [_schedule(r) for r in rows]


def get_schedule(settings: Settings, tenant_id: str, report_id: str, schedule_id: str) -> dict | None:
    with engine(settings).connect() as con:
        row = con.execute(sa.select(SCHEDULES).where(_schedule_where(tenant_id, report_id, schedule_id))).first()
    return _schedule(row) if row else None


def update_schedule(settings: Settings, tenant_id: str, report_id: str, schedule: ReportSchedule) -> bool:
    with engine(settings).begin() as con:
        changed = con.execute(
            SCHEDULES.update()
            .where(_schedule_where(tenant_id, report_id, schedule.id))
            .values(schedule=schedule.model_dump_json(), updated_at=_now())
        ).rowcount
    return changed == 1


def delete_schedule(settings: Settings, tenant_id: str, report_id: str, schedule_id: str) -> bool:
    with engine(settings).begin() as con:
        return con.execute(SCHEDULES.delete().where(_schedule_where(tenant_id, report_id, schedule_id))).rowcount == 1


# ---- runs ---------------------------------------------------------------------------------------
def record_run(settings: Settings, tenant_id: str, report_id: str, **values: Any) -> str:
    run_id = new_id("run")
    with engine(settings).begin() as con:
        con.execute(
            RUNS.insert().values(run_id=run_id, tenant_id=tenant_id, report_id=report_id, created_at=_now(), **values)
        )
    return run_id


def get_run(settings: Settings, tenant_id: str, report_id: str, run_id: str) -> dict | None:
    with engine(settings).connect() as con:
        row = con.execute(
            sa.select(RUNS).where(RUNS.c.tenant_id == tenant_id, RUNS.c.report_id == report_id, RUNS.c.run_id == run_id)
        ).first()
    return dict(row._mapping) if row else None


# ---- what the scheduler delivers ------------------------------------------------------------------
def stored_definitions(settings: Settings) -> list[ReportDefinition]:
    """Every tenant's API-created report with its schedules."""
    with engine(settings).connect() as con:
        reports = con.execute(sa.select(REPORTS).order_by(REPORTS.c.report_id)).all()
        schedules = con.execute(sa.select(SCHEDULES).order_by(SCHEDULES.c.created_at, SCHEDULES.c.schedule_id)).all()
    by_report: dict[str, list[dict]] = {}
    for row in schedules:
        by_report.setdefault(row.report_id, []).append(json.loads(row.schedule))
    out = []
    for row in reports:
        try:
            out.append(_definition(row, by_report.get(row.report_id)))
        except ValueError as error:  # stored before a rule existed: reported, and the other reports go on
            log.error("stored report %s of tenant %s is not valid any more: %s", row.report_id, row.tenant_id, error)
    return out


def all_definitions(settings: Settings) -> list[ReportDefinition]:
    """The YAML-defined reports and the API-created ones: what the schedule sensor delivers."""
    return [*load_definitions(settings.reports_dir), *stored_definitions(settings)]
