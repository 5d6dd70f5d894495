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


# Each version starts from the previous one and replaces only the partitions whose rows differ (row count and
# a hash of every row), in the DuckDB copy and in the Parquet, whose unchanged folders are hard links to the
# previous version's files (never modified): a day's run publishes what it changed, not the history. A mart's
# partition is its tenant; the event-grain marts (10M rows here) go by day, their Parquet by tenant and month.
DAY_PARTITIONED = {"fct_events": "event_date", "mart_email_performance_daily": "send_date"}


@dataclass(frozen=True)
class Layout:
    unit: str  # the column whose values are compared and replaced together
    folders: list[tuple[str, str]]  # Parquet partition folders: (name, SQL expression), tenant first
    folder_unit: str  # SQL over `unit`: the value of the last folder a changed unit rewrites


def layout(mart: str) -> Layout:
    day = DAY_PARTITIONED.get(mart)
    if day is None:
        return Layout("tenant_id", [("tenant_id", "tenant_id")], "tenant_id")
    month = f"strftime({day}, '%Y-%m')"
    return Layout(day, [("tenant_id", "tenant_id"), (f"{day}_month", month)], month)


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
            shape = layout(mart)
            changed = None  # None: every partition written anew
            if mart in held and [c[:2] for c in con.execute(f"DESCRIBE {copy}").fetchall()] == columns:
                changed = _patch_changed(con, source, copy, shape)
            else:
                con.execute(f"CREATE OR REPLACE TABLE {copy} AS SELECT * FROM {source}")
            target = staging / "parquet" / mart
            _write_parquet(con, source, shape, target, previous and previous / "parquet" / mart, changed)
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


def _patch_changed(con: duckdb.DuckDBPyConnection, source: str, copy: str, shape: Layout) -> set[str]:
    """Replace, in `copy`, the partitions (values of shape.unit) whose rows differ from `source`; returns the
    last-folder values (shape.folder_unit) of those partitions."""
    unit = shape.unit
    fingerprint = "SELECT {unit} AS unit, count(*) AS n, sum(hash(t)::HUGEINT) AS h FROM {table} AS t GROUP BY 1"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _changed AS
        SELECT coalesce(a.unit, b.unit) AS {unit}
        FROM ({fingerprint.format(unit=unit, table=source)}) AS a
        FULL OUTER JOIN ({fingerprint.format(unit=unit, table=copy)}) AS b ON a.unit = b.unit
        WHERE a.n IS DISTINCT FROM b.n OR a.h IS DISTINCT FROM b.h""")
    con.execute(f"DELETE FROM {copy} WHERE {unit} IN (SELECT {unit} FROM _changed)")
    con.execute(f"INSERT INTO {copy} SELECT * FROM {source} WHERE {unit} IN (SELECT {unit} FROM _changed)")
    folders = {str(r[0]) for r in con.execute(f"SELECT DISTINCT {shape.folder_unit} FROM _changed").fetchall()}
    con.execute("DROP TABLE _changed")
    return folders


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    source: str,
    shape: Layout,
    target: Path,
    previous: Path | None,
    changed: set[str] | None,
) -> None:
    """Parquet in shape.folders: a folder whose last value is not in `changed` is hard links to the previous
    version's files (when it has that folder); the others are written from `source` (all when `changed` is None)."""
    names = [name for name, _ in shape.folders]
    values = ", ".join(f"{expr} AS {name}" for name, expr in shape.folders)
    held = [tuple(str(v) for v in row) for row in con.execute(f"SELECT DISTINCT {values} FROM {source}").fetchall()]

    def folder(root: Path, row: tuple[str, ...]) -> Path:
        return root.joinpath(*(f"{name}={value}" for name, value in zip(names, row)))

    kept = [
        r for r in held if changed is not None and r[-1] not in changed and previous and folder(previous, r).is_dir()
    ]
    for row in kept:
        new = folder(target, row)
        new.mkdir(parents=True)
        for file in folder(previous, row).iterdir():
            os.link(file, new / file.name)
    if len(kept) < len(held):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _kept ({', '.join(f'{n} VARCHAR' for n in names)})")
        if kept:
            con.executemany(f"INSERT INTO _kept VALUES ({', '.join('?' for _ in names)})", kept)
        extra = ", ".join(f"{expr} AS {name}" for name, expr in shape.folders if expr != name)
        rows = f"SELECT *{', ' + extra if extra else ''} FROM {source}"
        on = " AND ".join(f"CAST(s.{n} AS VARCHAR) = k.{n}" for n in names)
        scratch = target.with_name(f".{target.name}.written")
        con.execute(
            f"COPY (SELECT s.* FROM ({rows}) AS s ANTI JOIN _kept AS k ON {on}) TO '{sql_path(scratch)}' "
            f"(FORMAT parquet, PARTITION_BY ({', '.join(names)}))"
        )
        for written in scratch.glob("/".join("*" for _ in names)):
            destination = target / written.relative_to(scratch)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, destination)
        shutil.rmtree(scratch)
    con.execute("DROP TABLE IF EXISTS _kept")


def _parquet_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    return int(con.execute("SELECT num_rows FROM parquet_file_metadata(?)", [str(path)]).fetchone()[0])


def _prune(publish_dir: Path, keep: int) -> None:
    versions = sorted(p for p in (publish_dir / "versions").iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in versions[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
