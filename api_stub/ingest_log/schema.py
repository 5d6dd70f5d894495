"""The API log's SQLite schema (WAL mode): `batches` (a request's events as JSON Lines), `events` (the
idempotency index, (tenant_id, event_id) unique), idempotency keys and the sealer's position."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
    con.execute("PRAGMA cache_size=-131072")  # 128 MiB: index pages of a growing log stay in memory
    return con


def init_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path)
    con.executescript("""
        CREATE TABLE IF NOT EXISTS batches (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            lines BLOB NOT NULL,  -- the batch's accepted events, JSON Lines
            refs BLOB,            -- ids of those events, as logs before status_keys wrote them
            status_keys BLOB,     -- their status keys as JSON, as logs before status_refs wrote them
            status_refs BLOB);    -- status_refs_blob() of those events
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
        -- When each run of the sealer landed the batches up to last_seq: what retention may drop, and when.
        CREATE TABLE IF NOT EXISTS seal_log (last_seq INTEGER PRIMARY KEY, sealed_at TEXT NOT NULL);
    """)
    columns = {row[1] for row in con.execute("PRAGMA table_info(batches)")}
    if "refs" not in columns:
        con.execute("ALTER TABLE batches ADD COLUMN refs BLOB")  # NULL: StatusIndex reads the lines instead
    for column in ("status_keys", "status_refs"):  # NULL: StatusIndex reads what an older log wrote instead
        if column not in columns:
            con.execute(f"ALTER TABLE batches ADD COLUMN {column} BLOB")
    con.close()


# One statement for the whole request: SQLite runs it without Python's GIL, which `executemany` takes back
# after every row — a writer then waits for its own process's request thread while holding the shared lock.
INSERT_INDEX = (
    "INSERT INTO events (tenant_id, event_id, batch_seq, position) "
    "SELECT ?, value, ?, key FROM json_each(?) WHERE true ON CONFLICT (tenant_id, event_id) DO NOTHING"
)
