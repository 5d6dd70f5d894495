"""The API log's writer: SQLite in WAL mode, written by one thread with group commits.

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
`StatusIndex` (files of its own): random inserts into secondary indexes inside
the commit cost more than everything else in it together (measured: 26k → 45k
events/s with two workers when they left the commit).

A sealer turns committed batches into immutable landing batches (leadron.landing)
with Arrow's JSON reader, column by column; the log keeps them for the status endpoint.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from api_stub.ingest_log.records import (
    Committed,
    Outcome,
    StoredEvent,
    Submission,
    content_of,
    decode_line,
    decoded,
    status_refs_blob,
)
from api_stub.ingest_log.retention import prune_log
from api_stub.ingest_log.schema import INSERT_INDEX, connect, init_schema
from api_stub.ingest_log.sealer import Sealer
from api_stub.ingest_log.status_index import StatusIndex
from leadron.settings import Settings

log = logging.getLogger("leadron.api.store")
RETENTION_EVERY_S = 3600  # the retention window is days: once an hour is plenty

MAX_GROUP = 20_000  # events per group commit at most
WAL_RESTART_BYTES = 64 * 2**20  # the WAL is started over from about this size


class EventStore:
    """Owns the writer thread (group commits) and the sealer thread of one server process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.api_events_path
        init_schema(self.path)
        self._queue: queue.Queue[Submission | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="leadron-group-commit", daemon=True)
        self._stop = threading.Event()
        self.sealer = Sealer(settings, self.path, self._stop)
        self._sealer = threading.Thread(target=self.sealer.loop, name="leadron-sealer", daemon=True)
        self._upkeep = threading.Thread(target=self._upkeep_loop, name="leadron-log-upkeep", daemon=True)
        self._reader = connect(self.path)
        self._reader_lock = threading.Lock()
        self._page_size = self._reader.execute("PRAGMA page_size").fetchone()[0]
        self.status = StatusIndex(self.path)

    def start(self) -> None:
        self.sealer.seal()  # whatever a crash left unsealed
        self.status.catch_up()  # a backlog (a log of the old layout, a long stop) before the first status request
        self.apply_retention()
        self._writer.start()
        self._sealer.start()
        self._upkeep.start()

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._stop.set()
        self._sealer.join(timeout=30)
        self._upkeep.join(timeout=30)
        self.sealer.seal()
        self._reader.close()
        self.status.close()

    def submit(self, submission: Submission) -> concurrent.futures.Future:
        self._queue.put(submission)
        return submission.future

    # ---- writer ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        con = connect(self.path)
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
            con.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    idem.tenant_id,
                    idem.route,
                    idem.key,
                    idem.request_hash,
                    committed.status,
                    committed.body,
                    datetime.now(UTC).isoformat(),
                ),
            )
        return committed

    @staticmethod
    def _insert(con: sqlite3.Connection, sub: Submission) -> list[Outcome] | None:
        """One batch row and one index row per event; events whose id is taken are not kept.

        None when every event was new."""
        seq = con.execute(
            "INSERT INTO batches (lines, status_refs) VALUES (?, ?)", (sub.lines, sub.status_refs)
        ).lastrowid
        before = con.total_changes
        con.execute(INSERT_INDEX, (sub.tenant_id, seq, sub.event_ids))
        if con.total_changes - before == len(sub.events):
            return None
        return EventStore._settle_duplicates(con, seq, sub.events)

    @staticmethod
    def _settle_duplicates(con: sqlite3.Connection, seq: int, events: list[StoredEvent]) -> list[Outcome]:
        """Some ids were taken: tell duplicates from conflicts, keep only the accepted events in the batch."""
        owners: dict[tuple[str, str], tuple[int, int]] = {}
        for e in events:
            row = con.execute(
                "SELECT batch_seq, position FROM events WHERE tenant_id = ? AND event_id = ?", (e.tenant_id, e.event_id)
            ).fetchone()
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
                blobs[owner_seq] = (
                    con.execute("SELECT lines FROM batches WHERE seq = ?", (owner_seq,)).fetchone()[0].split(b"\n")
                )
            original = blobs[owner_seq][owner_pos]
            same = content_of(original) == content_of(e.line)
            outcomes.append(Outcome("duplicate" if same else "conflict", decoded(original)))
        # Rewrite this batch with its accepted events only, renumbering their positions.
        con.execute(
            "UPDATE batches SET lines = ?, status_refs = ? WHERE seq = ?",
            (b"\n".join(e.line for e in kept), status_refs_blob(kept), seq),
        )
        for new_position, e in enumerate(kept):
            con.execute(
                "UPDATE events SET position = ? WHERE tenant_id = ? AND event_id = ?",
                (new_position, e.tenant_id, e.event_id),
            )
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
            blobs = {
                s: lines.split(b"\n")
                for s, lines in self._reader.execute(
                    "SELECT seq, lines FROM batches WHERE seq IN (SELECT value FROM json_each(?))",
                    (orjson.dumps(seqs).decode(),),
                )
            }
        events = (decode_line(blobs[s][p]) for s, p in refs if s in blobs)
        return sorted(
            (e for e in events if e["tenant_id"] == tenant_id and e[column] == value), key=lambda e: e["occurred_at"]
        )

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
        pruned_at = time.monotonic()
        while not self._stop.wait(self.settings.api_status_index_interval_s):
            try:
                self.status.catch_up()
                self._checkpoint()
                if time.monotonic() - pruned_at > RETENTION_EVERY_S:
                    pruned_at = time.monotonic()
                    self.apply_retention()
            except Exception:
                log.exception("upkeep of the API log (status index, checkpoint, retention) failed; will retry")

    def apply_retention(self, now: datetime | None = None) -> dict[str, int]:
        """Drop batches sealed more than LEADRON_RETENTION_API_LOG_DAYS ago (ingest_log/retention.py)."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.settings.retention_api_log_days)
        return prune_log(self.path, cutoff, self.status)

    def seal(self, limit: int = 5_000) -> int:
        return self.sealer.seal(limit)
