"""Publish what readers may read: every mart as Parquet (by tenant; the large day-grain ones also by
month) and a read-only DuckDB copy.

Readers (BI tools, the read API, exports) never open the live warehouse. Each publication is a new
version folder; it becomes visible by atomic symlink swaps, so a new reader sees a whole version
and a reader that has the previous copy open keeps reading it (its file stays until it closes it,
even after older versions are pruned).

    $LEADRON_HOME/published/
        marts.duckdb  -> versions/<v>/marts.duckdb        the stable path BI tools connect to
        current       -> versions/<v>                      parquet/<mart>/tenant_id=<t>/[<day>_month=<m>/]*.parquet,
                                                           manifest.json
        versions/<v>/
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from leadron.portable_types import portable_select
from leadron.sql_text import sql_path

MARTS_SCHEMA = "marts"
KEEP_VERSIONS = 3


@dataclass(frozen=True)
class Publication:
    version: str
    folder: Path
    tables: dict[str, int]  # mart -> rows
    watermark: str | None


def published_copy(publish_dir: Path) -> Path:
    return publish_dir / "marts.duckdb"


def publication_record(con: duckdb.DuckDBPyConnection) -> tuple[str, str, str | None]:
    """(version, published_at ISO, data freshness watermark) of the published copy `con` reads."""
    return con.execute("SELECT version, published_at, data_freshness_watermark FROM _publication").fetchone()


def current_manifest(publish_dir: Path) -> dict | None:
    path = publish_dir / "current" / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _swap_link(link: Path, target: Path) -> None:
    """Point `link` at `target` atomically (rename a new symlink over the old one)."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), temporary)
    os.replace(temporary, link)


def _tables(con: duckdb.DuckDBPyConnection, schema: str, catalog: str | None = None) -> list[str]:
    """Table names of `schema` (in `catalog`, else the connection's current database), sorted."""
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_catalog = coalesce(?, current_database()) ORDER BY table_name",
            [schema, catalog],
        ).fetchall()
    ]


def watermark(con: duckdb.DuckDBPyConnection) -> str | None:
    """The data's freshness: the newest event receipt time in the warehouse (UTC, ISO 8601)."""
    row = con.execute("SELECT max(received_at) FROM staging.stg_leadron__events").fetchone()
    return row[0].isoformat() if row and row[0] else None


# Marts too large to copy whole each time (10M-row event grain: ~11 s of a ~16 s publication here): the
# new version starts from the previous one and replaces only the days whose rows differ, in the DuckDB
# copy and, as months, in the Parquet (tenant_id=<t>/<day column>_month=YYYY-MM/; unchanged months are
# hard links to the previous version's files, which are never modified).
DAY_PARTITIONED = {"fct_events": "event_date", "mart_email_performance_daily": "send_date"}


def publish(con: duckdb.DuckDBPyConnection, publish_dir: Path, now: datetime | None = None) -> Publication:
    """Write a new version from the warehouse connection `con`, then swap it in and prune old versions."""
    now = now or datetime.now(UTC)
    version = now.strftime("%Y%m%dT%H%M%S%fZ")
    folder = publish_dir / "versions" / version
    staging = folder.with_name(f".{version}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "parquet").mkdir(parents=True)
    previous = _current_folder(publish_dir)
    marts = _tables(con, MARTS_SCHEMA)
    mark = watermark(con)
    manifest: dict = {
        "version": version,
        "published_at": now.isoformat(),
        "data_freshness_watermark": mark,
        "duckdb_copy": "marts.duckdb",
        "tables": {},
    }
    if previous is not None:
        shutil.copyfile(previous / "marts.duckdb", staging / "marts.duckdb")
    con.execute("ATTACH ? AS publication", [str(staging / "marts.duckdb")])
    try:
        held = set(_tables(con, "main", catalog="publication"))
        for stale in held - set(marts) - {"_publication"}:
            con.execute(f'DROP TABLE publication.main."{stale}"')
        for mart in marts:
            # Names come from the catalog (information_schema), quoted; no value is formatted in.
            table = f'{MARTS_SCHEMA}."{mart}"'
            select, columns = portable_select(con, table)
            source = f"({select})"  # the same types whichever engine built it
            copy = f'publication.main."{mart}"'
            day = DAY_PARTITIONED.get(mart)
            changed_months = None  # None: every file written anew
            if day and mart in held and [c[:2] for c in con.execute(f"DESCRIBE {copy}").fetchall()] == columns:
                changed_months = _patch_changed_days(con, source, copy, day)
            else:
                con.execute(f"CREATE OR REPLACE TABLE {copy} AS SELECT * FROM {source}")
            target = staging / "parquet" / mart
            if day:
                _write_monthly_parquet(
                    con, source, day, target, previous and previous / "parquet" / mart, changed_months
                )
            else:
                con.execute(f"COPY {source} TO '{sql_path(target)}' (FORMAT parquet, PARTITION_BY (tenant_id))")
            files = [
                {
                    "path": str(path.relative_to(staging)),
                    "tenant_id": path.relative_to(target).parts[0].removeprefix("tenant_id="),
                    "rows": _parquet_rows(con, path),
                }
                for path in sorted(target.rglob("*.parquet"))
            ]
            manifest["tables"][mart] = {
                "rows": con.execute(f"SELECT count(*) FROM {source}").fetchone()[0],
                "schema": [{"name": name, "type": kind} for name, kind in columns],
                "files": files,
            }
        con.execute(
            "CREATE OR REPLACE TABLE publication.main._publication AS SELECT ? AS version, "
            "? AS published_at, ? AS data_freshness_watermark",
            [version, now.isoformat(), mark],
        )
    finally:
        con.execute("DETACH publication")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(staging, folder)  # the version folder appears whole
    _swap_link(publish_dir / "current", folder)
    _swap_link(published_copy(publish_dir), folder / "marts.duckdb")
    _prune(publish_dir, keep=KEEP_VERSIONS)
    return Publication(version, folder, {m: t["rows"] for m, t in manifest["tables"].items()}, mark)


def _current_folder(publish_dir: Path) -> Path | None:
    """The version folder readers see now, if it holds a DuckDB copy to start from."""
    current = publish_dir / "current"
    if not current.exists():
        return None
    folder = current.resolve()
    return folder if (folder / "marts.duckdb").exists() else None


def _patch_changed_days(con: duckdb.DuckDBPyConnection, source: str, copy: str, day: str) -> set[str]:
    """Replace, in `copy`, the days whose rows differ from `source` (row count and a hash of every row);
    returns the months (YYYY-MM) of those days."""
    fingerprint = "SELECT {day} AS day, count(*) AS n, sum(hash(t)::HUGEINT) AS h FROM {table} AS t GROUP BY 1"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _changed_days AS
        SELECT coalesce(a.day, b.day) AS day
        FROM ({fingerprint.format(day=day, table=source)}) AS a
        FULL OUTER JOIN ({fingerprint.format(day=day, table=copy)}) AS b ON a.day = b.day
        WHERE a.n IS DISTINCT FROM b.n OR a.h IS DISTINCT FROM b.h""")
    con.execute(f"DELETE FROM {copy} WHERE {day} IN (SELECT day FROM _changed_days)")
    con.execute(f"INSERT INTO {copy} SELECT * FROM {source} WHERE {day} IN (SELECT day FROM _changed_days)")
    months = {r[0] for r in con.execute("SELECT DISTINCT strftime(day, '%Y-%m') FROM _changed_days").fetchall()}
    con.execute("DROP TABLE _changed_days")
    return months


def _write_monthly_parquet(
    con: duckdb.DuckDBPyConnection,
    source: str,
    day: str,
    target: Path,
    previous: Path | None,
    changed_months: set[str] | None,
) -> None:
    """Parquet by tenant and month of `day`: months not in `changed_months` are hard links to the previous
    version's files (when it has them in this layout); the others are written from `source`."""
    month = f"{day}_month"
    held = {
        (t, m) for t, m in con.execute(f"SELECT DISTINCT tenant_id, strftime({day}, '%Y-%m') FROM {source}").fetchall()
    }

    def old(tenant: str, m: str) -> Path | None:
        return previous / f"tenant_id={tenant}" / f"{month}={m}" if previous else None

    # A month is written whole (every tenant) when it changed or any tenant lacks a previous file for it.
    write = {
        m
        for tenant, m in held
        if changed_months is None or m in changed_months or not (old(tenant, m) and old(tenant, m).is_dir())
    }
    for tenant, m in held - {(t, m) for t, m in held if m in write}:
        new = target / f"tenant_id={tenant}" / f"{month}={m}"
        new.mkdir(parents=True)
        for file in old(tenant, m).iterdir():
            os.link(file, new / file.name)
    if write:
        scratch = target.with_name(f".{target.name}.written")
        con.execute(
            f"COPY (SELECT *, strftime({day}, '%Y-%m') AS {month} FROM {source} "
            f"WHERE strftime({day}, '%Y-%m') IN (SELECT unnest(?))) TO '{sql_path(scratch)}' "
            f"(FORMAT parquet, PARTITION_BY (tenant_id, {month}))",
            [sorted(write)],
        )
        for written in scratch.glob("tenant_id=*/*"):
            destination = target / written.parent.name / written.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, destination)
        shutil.rmtree(scratch)


def _parquet_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    return int(con.execute("SELECT num_rows FROM parquet_file_metadata(?)", [str(path)]).fetchone()[0])


def _prune(publish_dir: Path, keep: int) -> None:
    versions = sorted(p for p in (publish_dir / "versions").iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in versions[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
