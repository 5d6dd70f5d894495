"""Nothing grows without bound: the retention windows of the metadata store and the files, and the cleanup of
half-written folders a killed process left behind. Each window is a setting (leadron/settings.py, README
"Operations"); the `prune_history` job runs them daily and every run and the API remove stale partials at start.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from leadron import metadata
from leadron.exports import delete_files
from leadron.metadata import DELIVERIES, EXPORTS, RUNS
from leadron.settings import Settings

log = logging.getLogger("leadron.retention")


def _older_than(path: Path, seconds: float, now: float) -> bool:
    try:
        return now - path.lstat().st_mtime > seconds
    except FileNotFoundError:
        return False


def remove_stale_partials(settings: Settings, now: float | None = None) -> list[Path]:
    """Remove what a killed publication (versions/.<v>.partial), landing write (.tmp-*) or export left, once older than
    LEADRON_STALE_PARTIAL_SECONDS (longer than any write takes, so a write under way is never touched).
    Readers never see these: a version or a batch appears by one rename, whole."""
    now = time.time() if now is None else now
    candidates = []
    versions = settings.publish_dir / "versions"
    if versions.is_dir():
        candidates += list(versions.glob(".*.partial"))
    # Where writers stage (landing.land_events / land_dimension): no walk through the landed files themselves.
    candidates += list(settings.events_landing_dir.glob(".tmp-*"))
    candidates += list(settings.dimensions_landing_dir.glob("*/.tmp-*"))
    if settings.exports_dir.is_dir():
        candidates += list(settings.exports_dir.glob("*/.*.partial"))
    removed = []
    for path in candidates:
        if _older_than(path, settings.stale_partial_s, now):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.warning("removed %d half-written folders left by a killed process: %s", len(removed), removed)
    return removed


def prune_exports(settings: Settings, now: datetime | None = None) -> int:
    """Exports finished more than LEADRON_RETENTION_EXPORT_DAYS ago: their files (local and uploaded) and rows."""
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=settings.retention_export_days)).isoformat()
    old = EXPORTS.c.finished_at.is_not(None) & (EXPORTS.c.finished_at < cutoff)
    with metadata.engine(settings).begin() as con:
        rows = [dict(r._mapping) for r in con.execute(sa.select(EXPORTS).where(old))]
        for row in rows:
            delete_files(settings, row)
        con.execute(EXPORTS.delete().where(EXPORTS.c.export_id.in_([r["export_id"] for r in rows])))
    return len(rows)


def prune_report_runs(settings: Settings) -> int:
    """Keep the newest LEADRON_RETENTION_REPORT_RUNS stored runs of each report."""
    rank = (
        sa.func.row_number()
        .over(partition_by=(RUNS.c.tenant_id, RUNS.c.report_id), order_by=(RUNS.c.created_at.desc(), RUNS.c.run_id))
        .label("rank")
    )
    ranked = sa.select(RUNS.c.run_id, rank).subquery()
    doomed = sa.select(ranked.c.run_id).where(ranked.c.rank > settings.retention_report_runs)
    with metadata.engine(settings).begin() as con:
        return con.execute(RUNS.delete().where(RUNS.c.run_id.in_(doomed))).rowcount


def prune_deliveries(settings: Settings, now: datetime | None = None) -> int:
    """Delivery history older than LEADRON_RETENTION_DELIVERY_DAYS."""
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=settings.retention_delivery_days)).isoformat()
    with metadata.engine(settings).begin() as con:
        return con.execute(DELIVERIES.delete().where(DELIVERIES.c.due_at < cutoff)).rowcount


def prune_metadata(settings: Settings, now: datetime | None = None) -> dict[str, int]:
    return {
        "exports": prune_exports(settings, now),
        "report_runs": prune_report_runs(settings),
        "deliveries": prune_deliveries(settings, now),
    }
