"""The API's durable event log: SQLite in WAL mode, written by one thread with group commits.

Every request hands its events to the writer thread and waits. The writer takes
everything queued, writes it in one transaction and commits — one fsync shared by
all waiting requests (synchronous=FULL) — and only then answers them. So a 201
means the event is on disk: a SIGKILL after it loses nothing.

Layout: one `batches` row per request holds its events as JSON Lines (one line per
event, with its tenant, receipt time, source and position) and the message and
execution ids they mention; the `events` table is the idempotency index —
(tenant_id, event_id) unique. An event whose id is already stored is a duplicate
(same body) or a conflict (other body) and is not kept. An Idempotency-Key's stored
response is replayed (same request) or refused.

The commit holds a lock that the writers of all server processes share, so only
what must be atomic happens under it: the blob, the idempotency rows and, when an
Idempotency-Key is given, the stored response. Encoding happens before, rendering
after. Message and execution ids are indexed after the commit, in sorted runs, by
`StatusIndex` (a file of its own): random inserts into secondary indexes inside
the commit cost more than everything else in it together (measured: 26k → 45k
events/s with two workers when they left the commit).

A sealer turns committed batches into immutable landing batches (leadron.landing)
with Arrow's JSON reader, column by column; the log keeps them for the status endpoint.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import io
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from filelock import FileLock

from leadron.contract import EventIn, event_id_for
from api_stub.status_index import StatusIndex
from leadron import landing
from leadron.settings import Settings

log = logging.getLogger("leadron.api.store")

MAX_GROUP = 20_000  # events per group commit at most
WAL_RESTART_BYTES = 64 * 2**20  # the WAL is started over from about this size
_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)
_META = ("_t", "_r", "_s", "_p")  # tenant, received (epoch µs), source, position: added to each stored line


def micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICRO


class StoredEvent(NamedTuple):
    """A validated event as the log stores it: its index keys and its JSON line.

    A named tuple: built for every event of every request, where a frozen dataclass costs 4x as much."""

    tenant_id: str
    event_id: str
    event_type: str
    lead_id: str | None
    message_id: str | None
    workflow_execution_id: str | None
    occurred_at: datetime
    line: bytes

    @property
    def event_date(self) -> date:
        return self.occurred_at.date()

    @property
    def row(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "event_id": self.event_id, "event_type": self.event_type,
                "lead_id": self.lead_id, "message_id": self.message_id,
                "workflow_execution_id": self.workflow_execution_id, "occurred_at": self.occurred_at}


_NOT_IN_BODY = {"eventId", "tenantId", "properties"}


def encode_events(items: list[tuple[int, EventIn]], tenant_id: str, received_at: datetime,
                  source: str) -> list[StoredEvent]:
    """The stored form of valid events (with their positions in the request): the API's JSON (nulls left
    out) plus tenant and receipt metadata. Runs on every event of every request, hence the shared prefix
    and pydantic's serializer called directly (a third faster than `model_dump_json`)."""
    prefix = b'{"_t":"%s","_r":%d,"_s":"%s","_p":' % (tenant_id.encode(), micros(received_at), source.encode())
    stored = []
    for position, event in items:
        event_id = event_id_for(tenant_id, event)
        body = event.__pydantic_serializer__.to_json(event, exclude_none=True, exclude=_NOT_IN_BODY)
        line = prefix + b'%d,"eventId":"%s"' % (position, event_id.encode())
        if event.properties is not None:  # kept as a JSON string: the landing column is text
            line += b',"properties":' + orjson.dumps(orjson.dumps(event.properties).decode())
        line += b"," + body[1:] if len(body) > 2 else b"}"
        stored.append(StoredEvent(tenant_id, event_id, event.eventType.value, event.leadId, event.messageId,
                                  event.workflowExecutionId, event.timestamp or received_at, line))
    return stored


def encode_event(event: EventIn, tenant_id: str, received_at: datetime, source: str, position: int) -> StoredEvent:
    return encode_events([(position, event)], tenant_id, received_at, source)[0]


def decode_line(line: bytes) -> dict[str, Any]:
    """A stored line as a dict of the fields the API answers with (snake_case, occurred_at resolved)."""
    raw = orjson.loads(line)
    received = from_micros(raw["_r"])
    ts = raw.get("timestamp")
    return {"tenant_id": raw["_t"], "event_id": raw["eventId"], "event_type": raw["eventType"],
            "lead_id": raw.get("leadId"), "message_id": raw.get("messageId"),
            "workflow_execution_id": raw.get("workflowExecutionId"),
            "occurred_at": datetime.fromisoformat(ts) if ts else received, "received_at": received,
            "is_bot": raw.get("isBot"), "user_agent": raw.get("userAgent")}


def _content(line: bytes) -> dict[str, Any]:
    raw = orjson.loads(line)
    for key in _META:
        raw.pop(key, None)
    return raw


class Outcome(NamedTuple):
    """What happened to one event: accepted (new), duplicate (same body seen), conflict (same id, other body).

    `event` is the stored event the answer is about (the original one for duplicates and conflicts).
    """

    status: str
    event: StoredEvent

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def row(self) -> dict[str, Any]:
        return self.event.row


def _decoded(line: bytes) -> StoredEvent:
    d = decode_line(line)
    return StoredEvent(d["tenant_id"], d["event_id"], d["event_type"], d["lead_id"], d["message_id"],
                       d["workflow_execution_id"], d["occurred_at"], line)


@dataclass
class IdempotencyRecord:
    tenant_id: str
    route: str
    key: str
    request_hash: str


@dataclass
class Submission:
    """One request's events. The blobs the commit writes are built here, in the request's thread."""

    events: list[StoredEvent]
    idempotency: IdempotencyRecord | None = None
    render: Callable[[list[Outcome]], tuple[int, bytes]] | None = None
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    def __post_init__(self) -> None:
        self.lines = b"\n".join(e.line for e in self.events)
        self.refs = refs_blob(self.events)
        self.tenant_id = self.events[0].tenant_id if self.events else ""
        if any(e.tenant_id != self.tenant_id for e in self.events):
            raise ValueError("a submission holds the events of one tenant")  # one tenant per request, by its key
        self.event_ids = orjson.dumps([e.event_id for e in self.events])


def refs_blob(events: list[StoredEvent]) -> bytes:
    """The message and execution ids of a batch's events, by position: what `StatusIndex` indexes."""
    return orjson.dumps([(i, e.tenant_id, e.message_id, e.workflow_execution_id) for i, e in enumerate(events)
                         if e.message_id is not None or e.workflow_execution_id is not None])


@dataclass(frozen=True)
class Committed:
    """What the commit decided. `outcomes` None: every event was new (the common case, left unbuilt)."""

    outcomes: list[Outcome] | None
    status: int | None = None
    body: bytes | None = None
    replayed: bool = False
    conflict: bool = False

    def finish(self, sub: Submission) -> Committed:
        """Outcomes built and the response rendered, outside the commit (in the request's thread)."""
        done = self.outcomes is not None and (self.body is not None or sub.render is None)
        if self.conflict or self.replayed or done:
            return self  # nothing left to do: a replay, a refusal, or finished inside the commit
        outcomes = self.outcomes if self.outcomes is not None else [Outcome("accepted", e) for e in sub.events]
        if sub.render is None or self.body is not None:
            return Committed(outcomes, self.status, self.body)
        return Committed(outcomes, *sub.render(outcomes))


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
    con.execute("PRAGMA cache_size=-131072")  # 128 MiB: index pages of a growing log stay in memory
    return con


def init_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path)
    con.executescript("""
        CREATE TABLE IF NOT EXISTS batches (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            lines BLOB NOT NULL,  -- the batch's accepted events, JSON Lines
            refs BLOB);           -- refs_blob() of those events
        CREATE TABLE IF NOT EXISTS events (
            tenant_id TEXT NOT NULL, event_id TEXT NOT NULL,
            batch_seq INTEGER NOT NULL, position INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, event_id)) WITHOUT ROWID;
        -- Logs written before the status index had its own file indexed these inside the commit.
        DROP INDEX IF EXISTS events_by_message;
        DROP INDEX IF EXISTS events_by_execution;
        CREATE TABLE IF NOT EXISTS idempotency (
            tenant_id TEXT NOT NULL, route TEXT NOT NULL, idem_key TEXT NOT NULL, request_hash TEXT NOT NULL,
            status INTEGER NOT NULL, body BLOB NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (tenant_id, route, idem_key));
        CREATE TABLE IF NOT EXISTS seal_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL);
        INSERT OR IGNORE INTO seal_state VALUES (1, 0);
    """)
    if "refs" not in {row[1] for row in con.execute("PRAGMA table_info(batches)")}:
        con.execute("ALTER TABLE batches ADD COLUMN refs BLOB")  # NULL: StatusIndex reads the lines instead
    con.close()


# One statement for the whole request: SQLite runs it without Python's GIL, which `executemany` takes back
# after every row — a writer then waits for its own process's request thread while holding the shared lock.
_INSERT_INDEX = ("INSERT INTO events (tenant_id, event_id, batch_seq, position) "
                 "SELECT ?, value, ?, key FROM json_each(?) WHERE true ON CONFLICT (tenant_id, event_id) DO NOTHING")


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
        self._upkeep = threading.Thread(target=self._upkeep_loop, name="leadron-log-upkeep", daemon=True)
        self._reader = _connect(self.path)
        self._reader_lock = threading.Lock()
        self._page_size = self._reader.execute("PRAGMA page_size").fetchone()[0]
        self.status = StatusIndex(self.path)

    def start(self) -> None:
        self.seal()  # whatever a crash left unsealed
        self.status.catch_up()  # a backlog (a log of the old layout, a long stop) before the first status request
        self._writer.start()
        self._sealer.start()
        self._upkeep.start()

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._stop.set()
        self._sealer.join(timeout=30)
        self._upkeep.join(timeout=30)
        self.seal()
        self._reader.close()
        self.status.close()

    def submit(self, submission: Submission) -> concurrent.futures.Future:
        self._queue.put(submission)
        return submission.future

    # ---- writer ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        con = _connect(self.path)
        # Checkpoints copy the WAL into the database and fsync it: done by _upkeep_loop, not inside a commit
        # (under the lock every server process waits on).
        con.execute("PRAGMA wal_autocheckpoint=0")
        while True:
            first = self._queue.get()
            if first is None:
                break
            group, size, stop = [first], len(first.events), False
            while size < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                size += len(nxt.events)
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

    @contextlib.contextmanager
    def _write_turn(self) -> Iterator[None]:
        """The kernel lock the writers of every server process take turns on."""
        with open(self.path.with_name(self.path.name + ".write.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _commit(self, con: sqlite3.Connection, group: list[Submission]) -> list[Committed]:
        # Writers of several server processes take turns on a kernel lock: it wakes the next one the moment
        # the last commits, where SQLite's own busy handler would poll with sleeps of up to 100 ms.
        with self._write_turn():
            con.execute("BEGIN IMMEDIATE")
            try:
                results = [self._apply(con, sub) for sub in group]
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
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
        outcomes = self._insert(con, sub) if sub.events else []
        if idem is None or sub.render is None:
            return Committed(outcomes)  # rendered by the request, after the commit
        # The stored response commits with the events: a replay answers exactly what the first request got.
        committed = Committed(outcomes).finish(sub)
        if committed.status < 500:
            con.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (idem.tenant_id, idem.route, idem.key, idem.request_hash, committed.status, committed.body,
                         datetime.now().isoformat()))
        return committed

    @staticmethod
    def _insert(con: sqlite3.Connection, sub: Submission) -> list[Outcome] | None:
        """One batch row and one index row per event; events whose id is taken are not kept.

        None when every event was new."""
        seq = con.execute("INSERT INTO batches (lines, refs) VALUES (?, ?)", (sub.lines, sub.refs)).lastrowid
        before = con.total_changes
        con.execute(_INSERT_INDEX, (sub.tenant_id, seq, sub.event_ids))
        if con.total_changes - before == len(sub.events):
            return None
        return EventStore._settle_duplicates(con, seq, sub.events)

    @staticmethod
    def _settle_duplicates(con: sqlite3.Connection, seq: int, events: list[StoredEvent]) -> list[Outcome]:
        """Some ids were taken: tell duplicates from conflicts, keep only the accepted events in the batch."""
        owners: dict[tuple[str, str], tuple[int, int]] = {}
        for e in events:
            row = con.execute("SELECT batch_seq, position FROM events WHERE tenant_id = ? AND event_id = ?",
                              (e.tenant_id, e.event_id)).fetchone()
            owners[(e.tenant_id, e.event_id)] = row
        blobs: dict[int, list[bytes]] = {seq: [e.line for e in events]}
        outcomes, kept = [], []
        for position, e in enumerate(events):
            owner_seq, owner_pos = owners[(e.tenant_id, e.event_id)]
            if (owner_seq, owner_pos) == (seq, position):
                kept.append(e)
                outcomes.append(Outcome("accepted", e))
                continue
            if owner_seq not in blobs:
                blobs[owner_seq] = con.execute("SELECT lines FROM batches WHERE seq = ?", (owner_seq,)).fetchone()[0].split(b"\n")
            original = blobs[owner_seq][owner_pos]
            same = _content(original) == _content(e.line)
            outcomes.append(Outcome("duplicate" if same else "conflict", _decoded(original)))
        # Rewrite this batch with its accepted events only, renumbering their positions.
        con.execute("UPDATE batches SET lines = ?, refs = ? WHERE seq = ?",
                    (b"\n".join(e.line for e in kept), refs_blob(kept), seq))
        for new_position, e in enumerate(kept):
            con.execute("UPDATE events SET position = ? WHERE tenant_id = ? AND event_id = ?",
                        (new_position, e.tenant_id, e.event_id))
        if not kept:
            con.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        return outcomes

    # ---- reads (status endpoint) -------------------------------------------------------------
    def events_for(self, tenant_id: str, column: str, value: str) -> list[dict[str, Any]]:
        """Stored events of a message or execution, oldest first (the index caught up first)."""
        self.status.catch_up()
        refs = self.status.lookup(tenant_id, column, value)
        seqs = sorted({s for s, _ in refs})
        with self._reader_lock:
            # One bound value, a JSON array: a message may have events in any number of batches, and SQLite
            # binds at most SQLITE_MAX_VARIABLE_NUMBER values (999 on many builds).
            blobs = {s: lines.split(b"\n") for s, lines in self._reader.execute(
                "SELECT seq, lines FROM batches WHERE seq IN (SELECT value FROM json_each(?))",
                (orjson.dumps(seqs).decode(),))}
        events = (decode_line(blobs[s][p]) for s, p in refs if s in blobs)
        return sorted((e for e in events if e["tenant_id"] == tenant_id and e[column] == value),
                      key=lambda e: e["occurred_at"])

    def _checkpoint(self) -> None:
        """Copy the WAL into the database without blocking writers; restart it once it is large.

        Under steady load a PASSIVE checkpoint never catches the last commit, so SQLite never starts the
        WAL over and it grows without end (measured: 250 MB in 15 s). A RESTART, in the writers' turn,
        has only the last frames left to copy and makes the next commit write from the start of the file."""
        with self._reader_lock:
            _busy, frames, _copied = self._reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames * self._page_size < WAL_RESTART_BYTES:
                return
        with self._write_turn(), self._reader_lock:
            self._reader.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()

    def _upkeep_loop(self) -> None:
        """Index message and execution ids; checkpoint the WAL without blocking writers."""
        while not self._stop.wait(self.settings.api_status_index_interval_s):
            try:
                self.status.catch_up()
                self._checkpoint()
            except Exception:
                log.exception("upkeep of the API log (status index, checkpoint) failed; will retry")

    # ---- sealing into landing batches --------------------------------------------------------
    def _seal_loop(self) -> None:
        while not self._stop.wait(self.settings.api_seal_interval_s):
            try:
                self.seal()
            except Exception:
                log.exception("sealing the API log into the landing zone failed; will retry")

    def seal(self, limit: int = 5_000) -> int:
        """Land committed batches not yet landed as one immutable landing batch; returns events sealed."""
        sealed = 0
        with FileLock(str(self.path) + ".seal.lock", timeout=120):
            con = _connect(self.path)
            try:
                while True:
                    last = con.execute("SELECT last_seq FROM seal_state WHERE id = 1").fetchone()[0]
                    rows = con.execute("SELECT seq, lines FROM batches WHERE seq > ? ORDER BY seq LIMIT ?",
                                       (last, limit)).fetchall()
                    if not rows:
                        break
                    table = lines_to_landing(b"\n".join(r[1] for r in rows if r[1]))
                    if table.num_rows:
                        landing.land_events(self.settings, table, source="api")
                    # A crash between landing and this update lands the rows again: raw dedups them.
                    con.execute("UPDATE seal_state SET last_seq = ? WHERE id = 1", (rows[-1][0],))
                    sealed += table.num_rows
            finally:
                con.close()
        if sealed:
            log.info("sealed %d API events into the landing zone", sealed)
        return sealed


# Stored JSON field -> landing column, with the type Arrow's JSON reader parses it as.
_WIRE = [
    ("_t", "tenant_id", pa.string()), ("eventId", "event_id", pa.string()), ("eventType", "event_type", pa.string()),
    ("leadId", "lead_id", pa.string()), ("messageId", "message_id", pa.string()),
    ("workflowExecutionId", "workflow_execution_id", pa.string()), ("timestamp", "occurred_at", pa.timestamp("us")),
    ("userId", "user_id", pa.string()), ("workflowId", "workflow_id", pa.string()),
    ("stepNumber", "step_number", pa.int32()), ("url", "url", pa.string()), ("formId", "form_id", pa.string()),
    ("bounceType", "bounce_type", pa.string()), ("userAgent", "user_agent", pa.string()), ("ip", "ip", pa.string()),
    ("isBot", "is_bot", pa.bool_()), ("sentiment", "sentiment", pa.string()),
    ("properties", "properties", pa.string()), ("_r", "received_at", pa.int64()), ("_s", "source", pa.string()),
    ("_p", "source_line", pa.int64()),
]


def lines_to_landing(ndjson: bytes) -> pa.Table:
    """Stored JSON Lines as a landing table (EVENT_SCHEMA without batch_id), vectorised by Arrow."""
    schema = pa.schema([f for f in landing.EVENT_SCHEMA if f.name != "batch_id"])
    if not ndjson:
        return schema.empty_table()
    wire = pa.schema([(name, kind) for name, _, kind in _WIRE])
    parsed = pa_json.read_json(io.BytesIO(ndjson), parse_options=pa_json.ParseOptions(
        explicit_schema=wire, unexpected_field_behavior="ignore"))
    columns = {column: parsed.column(name) for name, column, _ in _WIRE}
    columns["received_at"] = columns["received_at"].cast(pa.timestamp("us"))
    columns["occurred_at"] = pc.coalesce(columns["occurred_at"], columns["received_at"])
    columns["event_date"] = columns["occurred_at"].cast(pa.date32())
    columns["source_line"] = pc.add(columns["source_line"], 1)
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in schema], schema=schema)
