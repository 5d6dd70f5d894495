"""The API's durable event log: SQLite in WAL mode, written by one thread with group commits.

Every request hands its rows to the writer thread and waits. The writer takes
everything queued, writes it in one transaction and commits — one fsync shared by
all waiting requests (synchronous=FULL) — and only then answers them. So a 201
means the event is on disk: a SIGKILL after it loses nothing.

The same transaction enforces idempotency: an event whose (tenant_id, event_id) is
already stored is a duplicate (same body) or a conflict (different body), and an
Idempotency-Key's stored response is replayed (same request) or refused (409).

A sealer moves committed rows into immutable landing batches (orchestration.landing)
that the Dagster ingest assets read; the log keeps its rows for the status endpoint.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json
from filelock import FileLock

from orchestration import landing
from orchestration.settings import Settings

log = logging.getLogger("leadron.api.store")

COLUMNS = [f.name for f in landing.EVENT_SCHEMA if f.name not in ("batch_id",)]
_TS_COLUMNS = {"occurred_at", "received_at"}
MAX_GROUP = 20_000  # rows per group commit at most


@dataclass
class Outcome:
    """What happened to one event: accepted (new), duplicate (same body seen), conflict (same id, other body)."""

    status: str
    row: dict[str, Any]


@dataclass
class IdempotencyRecord:
    tenant_id: str
    route: str
    key: str
    request_hash: str


@dataclass
class Submission:
    rows: list[tuple[dict[str, Any], bytes]]  # (landing row, body hash)
    idempotency: IdempotencyRecord | None = None
    render: Callable[[list[Outcome]], tuple[int, bytes]] | None = None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


@dataclass(frozen=True)
class Committed:
    outcomes: list[Outcome]
    status: int | None = None
    body: bytes | None = None
    replayed: bool = False
    conflict: bool = False


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
    con.execute("PRAGMA cache_size=-131072")  # 128 MiB: index pages of a growing log stay in memory
    return con


_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)


def _micros(value: datetime) -> int:
    # Timestamps are stored as integer microseconds since the epoch (UTC): cheap both ways.
    return (value - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICRO


def init_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path)
    con.executescript("""
        CREATE TABLE IF NOT EXISTS events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, body_hash BLOB NOT NULL,
            message_id TEXT, workflow_execution_id TEXT,
            payload BLOB NOT NULL,  -- the landing row as JSON (timestamps as epoch microseconds)
            UNIQUE (tenant_id, event_id));
        CREATE INDEX IF NOT EXISTS events_by_message ON events (tenant_id, message_id) WHERE message_id IS NOT NULL;
        CREATE INDEX IF NOT EXISTS events_by_execution ON events (tenant_id, workflow_execution_id)
            WHERE workflow_execution_id IS NOT NULL;
        CREATE TABLE IF NOT EXISTS idempotency (
            tenant_id TEXT NOT NULL, route TEXT NOT NULL, idem_key TEXT NOT NULL, request_hash TEXT NOT NULL,
            status INTEGER NOT NULL, body BLOB NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, route, idem_key));
        CREATE TABLE IF NOT EXISTS seal_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL);
        INSERT OR IGNORE INTO seal_state VALUES (1, 0);
    """)
    con.close()


def _payload(row: dict[str, Any]) -> bytes:
    # Only the non-null fields: a smaller row is a cheaper insert and commit (missing = null when sealed).
    out = {c: v for c in COLUMNS if (v := row.get(c)) is not None}
    for c in _TS_COLUMNS:
        if c in out:
            out[c] = _micros(out[c])
    out["event_date"] = out["event_date"].isoformat()
    return orjson.dumps(out)


def _from_payload(payload: bytes) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS) | orjson.loads(payload)
    for c in _TS_COLUMNS:
        if row.get(c) is not None:
            row[c] = from_micros(row[c])
    return row


_INSERT_SQL = ("INSERT INTO events (tenant_id, event_id, body_hash, message_id, workflow_execution_id, payload) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, event_id) DO NOTHING")


def _db_row(row: dict[str, Any], body_hash: str) -> tuple:
    return (row["tenant_id"], row["event_id"], body_hash, row.get("message_id"), row.get("workflow_execution_id"),
            _payload(row))


class EventStore:
    """Owns the writer thread (group commits) and the sealer thread of one server process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.api_events_path
        init_schema(self.path)
        self._queue: queue.Queue[Submission | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="leadron-group-commit", daemon=True)
        self._stop = threading.Event()
        self._sealer = threading.Thread(target=self._seal_loop, name="leadron-sealer", daemon=True)
        self._reader = _connect(self.path)
        self._reader_lock = threading.Lock()
        self.commits = 0

    def start(self) -> None:
        self.seal()  # whatever a crash left unsealed
        self._writer.start()
        self._sealer.start()

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._stop.set()
        self._sealer.join(timeout=30)
        self.seal()
        self._reader.close()

    def submit(self, submission: Submission) -> concurrent.futures.Future:
        self._queue.put(submission)
        return submission.future

    # ---- writer ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        con = _connect(self.path)
        while True:
            first = self._queue.get()
            if first is None:
                break
            group, rows, stop = [first], len(first.rows), False
            while rows < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                rows += len(nxt.rows)
            try:
                results = self._commit(con, group)
            except Exception as exc:  # a storage failure fails the waiting requests, never silently
                log.exception("group commit failed")
                for sub in group:
                    sub.future.set_exception(exc)
            else:
                for sub, result in zip(group, results):
                    sub.future.set_result(result)
            if stop:
                break
        con.close()

    def _commit(self, con: sqlite3.Connection, group: list[Submission]) -> list[Committed]:
        results: list[Committed] = []
        con.execute("BEGIN IMMEDIATE")
        try:
            for sub in group:
                results.append(self._apply(con, sub))
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self.commits += 1
        return results

    def _apply(self, con: sqlite3.Connection, sub: Submission) -> Committed:
        idem = sub.idempotency
        if idem is not None:
            stored = con.execute(
                "SELECT request_hash, status, body FROM idempotency WHERE tenant_id = ? AND route = ? AND idem_key = ?",
                (idem.tenant_id, idem.route, idem.key),
            ).fetchone()
            if stored is not None:
                if stored[0] != idem.request_hash:
                    return Committed([], conflict=True)
                return Committed([], status=stored[1], body=stored[2], replayed=True)
        outcomes = self._insert(con, sub.rows)
        status = body = None
        if sub.render is not None:
            status, body = sub.render(outcomes)
            if idem is not None and status < 500:
                con.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (idem.tenant_id, idem.route, idem.key, idem.request_hash, status, body,
                             datetime.now().isoformat()))
        return Committed(outcomes, status, body)

    @staticmethod
    def _insert(con: sqlite3.Connection, rows: list[tuple[dict[str, Any], bytes]]) -> list[Outcome]:
        """Insert new events in one executemany; earlier ones (stored or in this list) are duplicates/conflicts."""
        existing: dict[tuple[str, str], tuple[dict[str, Any], bytes]] = {}
        by_tenant: dict[str, list[str]] = {}
        for row, _ in rows:
            by_tenant.setdefault(row["tenant_id"], []).append(row["event_id"])
        for tenant, ids in by_tenant.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found = con.execute(f"SELECT payload, body_hash FROM events WHERE tenant_id = ? AND event_id IN "
                                    f"({', '.join('?' * len(chunk))})", (tenant, *chunk)).fetchall()
                for payload, stored_hash in found:
                    stored = _from_payload(payload)
                    existing[(stored["tenant_id"], stored["event_id"])] = (stored, stored_hash)
        outcomes, fresh = [], []
        for row, body_hash in rows:
            key = (row["tenant_id"], row["event_id"])
            if key in existing:
                first, first_hash = existing[key]
                outcomes.append(Outcome("duplicate" if first_hash == body_hash else "conflict", first))
                continue
            existing[key] = (row, body_hash)
            fresh.append(_db_row(row, body_hash))
            outcomes.append(Outcome("accepted", row))
        con.executemany(_INSERT_SQL, fresh)
        return outcomes

    # ---- reads (status endpoint) -------------------------------------------------------------
    def events_for(self, tenant_id: str, column: str, value: str) -> list[dict[str, Any]]:
        """Stored events of a message or execution (landing rows), oldest first."""
        if column not in ("message_id", "workflow_execution_id"):
            raise ValueError(column)
        sql = f"SELECT payload FROM events WHERE tenant_id = ? AND {column} = ?"
        with self._reader_lock:
            rows = self._reader.execute(sql, (tenant_id, value)).fetchall()
        return sorted((_from_payload(r[0]) for r in rows), key=lambda e: e["occurred_at"])

    # ---- sealing into landing batches --------------------------------------------------------
    def _seal_loop(self) -> None:
        while not self._stop.wait(self.settings.api_seal_interval_s):
            try:
                self.seal()
            except Exception:
                log.exception("sealing the API log into the landing zone failed; will retry")

    def seal(self, limit: int = 500_000) -> int:
        """Land committed rows not yet landed as one immutable batch; returns rows sealed."""
        sealed = 0
        with FileLock(str(self.path) + ".seal.lock", timeout=120):
            con = _connect(self.path)
            try:
                while True:
                    last = con.execute("SELECT last_seq FROM seal_state WHERE id = 1").fetchone()[0]
                    rows = con.execute("SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                       (last, limit)).fetchall()
                    if not rows:
                        break
                    table = _to_arrow(rows)
                    landing.land_events(self.settings, table, source="api")
                    # A crash between landing and this update lands the rows again: raw dedups them.
                    con.execute("UPDATE seal_state SET last_seq = ? WHERE id = 1", (rows[-1][0],))
                    sealed += len(rows)
            finally:
                con.close()
        if sealed:
            log.info("sealed %d API events into the landing zone", sealed)
        return sealed


def _to_arrow(rows: list[tuple[int, bytes]]) -> pa.Table:
    """Payloads of `SELECT seq, payload` as a landing table, parsed by Arrow's JSON reader."""
    schema = pa.schema([f for f in landing.EVENT_SCHEMA if f.name != "batch_id"])
    wire = pa.schema([pa.field(f.name, pa.int64() if f.name in _TS_COLUMNS else
                               pa.string() if f.name == "event_date" else f.type) for f in schema])
    table = pa_json.read_json(io.BytesIO(b"\n".join(r[1] for r in rows)),
                              parse_options=pa_json.ParseOptions(explicit_schema=wire, unexpected_field_behavior="ignore"))
    arrays = []
    for f in schema:
        column = table.column(f.name)
        if f.name in _TS_COLUMNS:
            column = column.cast(f.type)
        elif f.name == "event_date":
            column = column.cast(pa.timestamp("us")).cast(f.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def canonical_hash(payload: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()
