"""Events that have arrived but are not yet in the published marts, for today's real-time numbers.

Two places hold them: the landing zone (batches landed by imports and by the API's sealer) and the
API's own log, whose newest batches are not sealed yet (the sealer runs every few seconds). Both are
read for one tenant and one UTC day, keeping only events received after the publication's watermark,
each (tenant, event id) once.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from api_stub.ingest_log.sealer import lines_to_landing
from leadron.settings import Settings

COLUMNS = ("event_id", "event_type", "occurred_at", "lead_id", "received_at")


def unsealed_tail(log_path: Path) -> pa.Table:
    """The API log's committed batches the sealer has not landed yet (read-only)."""
    if not log_path.exists():
        return lines_to_landing(b"")
    with closing(sqlite3.connect(f"file:{log_path}?mode=ro", uri=True, timeout=5)) as con:
        last = con.execute("SELECT last_seq FROM seal_state WHERE id = 1").fetchone()[0]
        lines = [r[0] for r in con.execute("SELECT lines FROM batches WHERE seq > ? ORDER BY seq", (last,)) if r[0]]
    return lines_to_landing(b"\n".join(lines))


def unloaded_events(settings: Settings, tenant_id: str, day: date, after: datetime | None) -> list[dict]:
    """Events of the tenant that happened on `day` and were received after `after` (the watermark)."""
    files = sorted(str(p) for p in settings.events_landing_dir.glob(f"batch=*/event_date={day.isoformat()}/*.parquet"))
    tail = unsealed_tail(settings.api_events_path)
    with closing(duckdb.connect()) as con:
        con.register("tail", tail)
        columns = ", ".join(("tenant_id", *COLUMNS))
        parts = [f"SELECT {columns} FROM tail"]
        if files:
            parts.append(f"SELECT {columns} FROM read_parquet($files, union_by_name = true)")
        cur = con.execute(
            f"""
            SELECT {", ".join(COLUMNS)} FROM ({" UNION ALL ".join(parts)})
            WHERE tenant_id = $tenant AND CAST(occurred_at AS DATE) = $day
              AND ($after IS NULL OR received_at > $after)
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at) = 1""",
            {"tenant": tenant_id, "day": day, "after": after, **({"files": files} if files else {})},
        )
        return [dict(zip(COLUMNS, row)) for row in cur.fetchall()]
