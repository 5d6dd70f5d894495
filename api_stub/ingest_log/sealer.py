"""The sealer: committed batches of the API log into immutable landing batches (leadron.landing), with
Arrow's JSON reader, column by column; the log keeps them for the status endpoint."""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from filelock import FileLock

from api_stub.ingest_log.schema import connect
from leadron import landing
from leadron.settings import Settings

log = logging.getLogger("leadron.api.store")


class Sealer:
    """Seals one log file; `loop` runs in the writer's sealer thread until `stop` is set."""

    def __init__(self, settings: Settings, path: Path, stop: threading.Event):
        self.settings, self.path, self._stop = settings, path, stop

    def loop(self) -> None:
        while not self._stop.wait(self.settings.api_seal_interval_s):
            try:
                self.seal()
            except Exception:
                log.exception("sealing the API log into the landing zone failed; will retry")

    def seal(self, limit: int = 5_000) -> int:
        """Land committed batches not yet landed as one immutable landing batch; returns events sealed."""
        sealed = 0
        with FileLock(str(self.path) + ".seal.lock", timeout=120):
            con = connect(self.path)
            try:
                while True:
                    last = con.execute("SELECT last_seq FROM seal_state WHERE id = 1").fetchone()[0]
                    rows = con.execute(
                        "SELECT seq, lines FROM batches WHERE seq > ? ORDER BY seq LIMIT ?", (last, limit)
                    ).fetchall()
                    if not rows:
                        break
                    table = lines_to_landing(b"\n".join(r[1] for r in rows if r[1]))
                    if table.num_rows:
                        landing.land_events(self.settings, table, source="api")
                    # A crash between landing and this update lands the rows again: raw dedups them.
                    con.execute("UPDATE seal_state SET last_seq = ? WHERE id = 1", (rows[-1][0],))
                    con.execute(
                        "INSERT OR REPLACE INTO seal_log VALUES (?, ?)",
                        (rows[-1][0], datetime.now(UTC).isoformat()),
                    )
                    sealed += table.num_rows
            finally:
                con.close()
        if sealed:
            log.info("sealed %d API events into the landing zone", sealed)
        return sealed


# Stored JSON field -> landing column, with the type Arrow's JSON reader parses it as.
_WIRE = [
    ("_t", "tenant_id", pa.string()),
    ("eventId", "event_id", pa.string()),
    ("eventType", "event_type", pa.string()),
    ("leadId", "lead_id", pa.string()),
    ("messageId", "message_id", pa.string()),
    ("workflowExecutionId", "workflow_execution_id", pa.string()),
    ("timestamp", "occurred_at", pa.timestamp("us")),
    ("userId", "user_id", pa.string()),
    ("workflowId", "workflow_id", pa.string()),
    ("stepNumber", "step_number", pa.int32()),
    ("url", "url", pa.string()),
    ("formId", "form_id", pa.string()),
    ("bounceType", "bounce_type", pa.string()),
    ("userAgent", "user_agent", pa.string()),
    ("ip", "ip", pa.string()),
    ("isBot", "is_bot", pa.bool_()),
    ("sentiment", "sentiment", pa.string()),
    ("properties", "properties", pa.string()),
    ("_r", "received_at", pa.int64()),
    ("_s", "source", pa.string()),
    ("_p", "source_line", pa.int64()),
]


def lines_to_landing(ndjson: bytes) -> pa.Table:
    """Stored JSON Lines as a landing table (EVENT_SCHEMA without batch_id), vectorised by Arrow."""
    schema = pa.schema([f for f in landing.EVENT_SCHEMA if f.name != "batch_id"])
    if not ndjson:
        return schema.empty_table()
    wire = pa.schema([(name, kind) for name, _, kind in _WIRE])
    parsed = pa_json.read_json(
        io.BytesIO(ndjson), parse_options=pa_json.ParseOptions(explicit_schema=wire, unexpected_field_behavior="ignore")
    )
    columns = {column: parsed.column(name) for name, column, _ in _WIRE}
    columns["received_at"] = columns["received_at"].cast(pa.timestamp("us"))
    columns["occurred_at"] = pc.coalesce(columns["occurred_at"], columns["received_at"])
    columns["event_date"] = columns["occurred_at"].cast(pa.date32())
    columns["source_line"] = pc.add(columns["source_line"], 1)
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in schema], schema=schema)
