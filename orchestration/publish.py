"""Publish what readers may read: every mart as Parquet (by tenant) and a read-only DuckDB copy.

Readers (BI tools, the read API, exports) never open the live warehouse. Each publication is a new
version folder; it becomes visible by atomic symlink swaps, so a new reader sees a whole version
and a reader that has the previous copy open keeps reading it (its file stays until it closes it,
even after older versions are pruned).

    $LEADRON_HOME/published/
        marts.duckdb  -> versions/<v>/marts.duckdb        the stable path BI tools connect to
        current       -> versions/<v>                      parquet/<mart>/tenant_id=<t>/*.parquet, manifest.json
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


def _marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
        [MARTS_SCHEMA]).fetchall()]


def watermark(con: duckdb.DuckDBPyConnection) -> str | None:
    """The data's freshness: the newest event receipt time in the warehouse (UTC, ISO 8601)."""
    row = con.execute("SELECT max(received_at) FROM staging.stg_leadron__events").fetchone()
    return row[0].isoformat() if row and row[0] else None


def publish(con: duckdb.DuckDBPyConnection, publish_dir: Path, now: datetime | None = None) -> Publication:
    """Write a new version from the warehouse connection `con`, then swap it in and prune old versions."""
    now = now or datetime.now(UTC)
    version = now.strftime("%Y%m%dT%H%M%S%fZ")
    folder = publish_dir / "versions" / version
    staging = folder.with_name(f".{version}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "parquet").mkdir(parents=True)
    marts = _marts(con)
    mark = watermark(con)
    manifest: dict = {"version": version, "published_at": now.isoformat(), "data_freshness_watermark": mark,
                      "duckdb_copy": "marts.duckdb", "tables": {}}
    con.execute("ATTACH ? AS publication", [str(staging / "marts.duckdb")])
    try:
        for mart in marts:
            # Names come from the catalog (information_schema), quoted; no value is formatted in.
            source = f'{MARTS_SCHEMA}."{mart}"'
            con.execute(f'CREATE TABLE publication.main."{mart}" AS SELECT * FROM {source}')
            columns = con.execute(f"DESCRIBE {source}").fetchall()
            counts = dict(con.execute(f"SELECT tenant_id, count(*) FROM {source} GROUP BY tenant_id").fetchall())
            target = staging / "parquet" / mart
            con.execute(f"COPY {source} TO '{_sql_path(target)}' (FORMAT parquet, PARTITION_BY (tenant_id))")
            files = []
            for path in sorted(target.rglob("*.parquet")):
                tenant = path.parent.name.removeprefix("tenant_id=")
                files.append({"path": str(path.relative_to(staging)), "tenant_id": tenant,
                              "rows": int(counts.get(tenant, 0))})
            manifest["tables"][mart] = {
                "rows": int(sum(counts.values())),
                "schema": [{"name": c[0], "type": c[1]} for c in columns],
                "files": files,
            }
        con.execute("CREATE TABLE publication.main._publication AS SELECT ? AS version, ? AS published_at, "
                    "? AS data_freshness_watermark", [version, now.isoformat(), mark])
    finally:
        con.execute("DETACH publication")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(staging, folder)  # the version folder appears whole
    _swap_link(publish_dir / "current", folder)
    _swap_link(published_copy(publish_dir), folder / "marts.duckdb")
    _prune(publish_dir, keep=KEEP_VERSIONS)
    return Publication(version, folder, {m: t["rows"] for m, t in manifest["tables"].items()}, mark)


def _sql_path(path: Path) -> str:
    # COPY takes no parameter for its target; the path is ours (LEADRON_HOME), quotes doubled anyway.
    return str(path).replace("'", "''")


def _prune(publish_dir: Path, keep: int) -> None:
    versions = sorted(p for p in (publish_dir / "versions").iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in versions[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
