"""Which landed items the warehouse has processed: what `leadron run` re-derives next.

The landing zone holds one folder per (batch, event day) and one file per dimension snapshot. A run's raw
loads record the items they read as that run's; only when the run's publication succeeds do they become
processed. A run killed anywhere (raw load, dbt, publication) leaves them pending, so the next run re-derives
their days: never skipped.
Both tables live in the warehouse, written by its one writer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from leadron import dimensions, landing
from leadron.settings import Settings

SCHEMA = "meta"
LOADED = f"{SCHEMA}.run_loaded_items"  # (run_id, item): read by a run not yet published
PROCESSED = f"{SCHEMA}.processed_items"  # (item, run_id, processed_at): read by a published run


@dataclass(frozen=True)
class Item:
    """A landed unit a run reads whole: an event folder (one batch's events of one day) or a dimension
    snapshot file, named by its path under the landing zone."""

    path: str
    event_date: date | None = None  # None: a dimension snapshot

    @classmethod
    def of(cls, settings: Settings, path: str | Path, event_date: date | None = None) -> Item:
        return cls(str(Path(path).relative_to(settings.landing_dir)), event_date)


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {LOADED} (run_id VARCHAR, item VARCHAR)")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {PROCESSED} (item VARCHAR PRIMARY KEY, run_id VARCHAR, processed_at TIMESTAMP)"
    )


def record_loaded(con: duckdb.DuckDBPyConnection, run_id: str, items: list[Item]) -> None:
    """The landed items a run's raw load read (kept until the run publishes)."""
    _ensure(con)
    if items:
        con.executemany(f"INSERT INTO {LOADED} VALUES (?, ?)", [(run_id, i.path) for i in items])


def mark_processed(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """After `run_id` published: what it loaded is processed. Returns how many items became so."""
    _ensure(con)
    con.execute("BEGIN TRANSACTION")
    try:
        added = con.execute(
            f"INSERT INTO {PROCESSED} SELECT DISTINCT item, run_id, now()::TIMESTAMP "
            f"FROM {LOADED} WHERE run_id = ? ON CONFLICT DO NOTHING",
            [run_id],
        ).fetchone()[0]
        # Rows of runs that never published go too: what they read stays pending through the landing zone.
        con.execute(f"DELETE FROM {LOADED} WHERE item IN (SELECT item FROM {PROCESSED})")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return added


@dataclass(frozen=True)
class Pending:
    """What landed since the last successful run."""

    items: list[Item]
    first_run: bool  # no run has published yet

    @property
    def days(self) -> list[date]:
        return sorted({i.event_date for i in self.items if i.event_date is not None})

    @property
    def dimensions(self) -> list[str]:
        return sorted({i.path.split("/")[1] for i in self.items if i.event_date is None})

    def describe(self) -> list[str]:
        """Progress lines: which days are re-derived, and why."""
        if self.first_run:
            return [f"no successful run recorded: every landed day ({len(self.days)} days)"]
        per_day = Counter(i.event_date for i in self.items if i.event_date is not None)
        lines = [f"{day}: {per_day[day]} landed batch(es) of its events not yet processed" for day in self.days[:10]]
        if len(self.days) > 10:
            lines.append(f"... and {len(self.days) - 10} more days up to {self.days[-1]}")
        if self.dimensions:
            lines.append(f"new snapshots of {', '.join(self.dimensions)}: the models rebuild from all history")
        return lines


def landed(settings: Settings) -> list[Item]:
    """Every landed event folder and dimension snapshot."""
    snapshots = [p for name in sorted(dimensions.DIMENSIONS) for p in landing.dimension_snapshots(settings, name)]
    return [Item.of(settings, path, day) for path, day in landing.event_folders(settings)] + [
        Item.of(settings, path) for path in snapshots
    ]


def pending(con: duckdb.DuckDBPyConnection, settings: Settings) -> Pending:
    """Landed items no published run has read."""
    _ensure(con)
    done = {r[0] for r in con.execute(f"SELECT item FROM {PROCESSED}").fetchall()}
    return Pending([i for i in landed(settings) if i.path not in done], first_run=not done)
