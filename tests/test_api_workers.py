"""Several server processes: their own SO_REUSEPORT sockets, one log, one status index."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import duckdb
import orjson
import psutil
import pytest

from api_stub.ingest_log.schema import init_schema
from api_stub.ingest_log.status_index import StatusIndex
from api_stub.ingest_log.writer import EventStore
from leadron.settings import get_settings
from tests.api_server import Server, hammer, post_json
from tests.conftest import use_home

STATUS = "/v1/analytics/events/status"


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    home = tmp_path_factory.mktemp("workers") / "home"
    home.mkdir()
    srv = Server(home, {"LEADRON_STATUS_INDEX_INTERVAL": "60"}, workers=2).start()  # start() waits for both
    yield srv
    srv.stop()


def test_every_worker_listens_and_the_supervisor_stops_them_all(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    srv = Server(home, {}, workers=2).start()
    children = srv.proc_children()
    assert len(children) >= 2 and srv.listening() == 2
    srv.stop()
    _gone, alive = psutil.wait_procs(children, timeout=10)  # multiprocessing's resource tracker exits just after
    assert srv.proc.returncode == 0 and not alive
    with socket.socket() as s:  # the port is free again (for a server, which sets SO_REUSEADDR)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", srv.port))


def test_status_answers_at_once_whichever_worker_took_the_events(two_workers):
    key = two_workers.create_key("acme-corp")
    # New connections land on either worker; the index interval is a minute, so only catch-up can answer.
    for n in range(6):
        events = [
            {
                "eventType": "email_sent",
                "eventId": f"w{n}-s",
                "messageId": f"msg-w{n}",
                "leadId": "L1",
                "workflowExecutionId": "x-workers",
                "timestamp": "2026-11-20T10:00:00Z",
            },
            {
                "eventType": "email_open",
                "eventId": f"w{n}-o",
                "messageId": f"msg-w{n}",
                "leadId": "L1",
                "timestamp": "2026-11-20T11:00:00Z",
            },
        ]
        with two_workers.client(key) as c:
            assert post_json(c, "/v1/analytics/events/batch", {"events": events}).status_code == 201
        with two_workers.client(key) as c:
            data = c.get(STATUS, params={"messageId": f"msg-w{n}"}).json()["data"]
        assert data["opened"] is True and data["events"] == {"email_sent": 1, "email_open": 1}
    with two_workers.client(key) as c:
        data = c.get("/v1/analytics/workflow-executions/x-workers/status").json()["data"]
    assert data["events"] == {"email_sent": 6}
    other = two_workers.create_key("globex")
    with two_workers.client(other) as c:  # same ids, other tenant: nothing
        assert c.get(STATUS, params={"messageId": "msg-w0"}).json()["data"]["events"] == {}


def test_a_log_of_the_old_layout_is_migrated_and_indexed(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    path = get_settings().api_events_path
    path.parent.mkdir(parents=True)
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, lines BLOB NOT NULL);
        CREATE TABLE events (tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, batch_seq INTEGER NOT NULL,
            position INTEGER NOT NULL, message_id TEXT, workflow_execution_id TEXT,
            PRIMARY KEY (tenant_id, event_id)) WITHOUT ROWID;
        CREATE INDEX events_by_message ON events (tenant_id, message_id) WHERE message_id IS NOT NULL;
    """)
    lines = [
        {
            "_t": "acme-corp",
            "_r": 1_790_000_000_000_000,
            "_s": "api",
            "_p": i,
            "eventId": f"old-{i}",
            "eventType": kind,
            "messageId": "msg-old",
            "timestamp": f"2026-09-01T10:0{i}:00",
        }
        for i, kind in enumerate(["email_sent", "link_click"])
    ]
    con.execute("INSERT INTO batches (lines) VALUES (?)", (b"\n".join(orjson.dumps(x) for x in lines),))
    con.executemany("INSERT INTO events VALUES ('acme-corp', ?, 1, ?, 'msg-old', NULL)", [("old-0", 0), ("old-1", 1)])
    con.commit()
    con.close()
    init_schema(path)
    with sqlite3.connect(path) as con:
        assert "refs" in {r[1] for r in con.execute("PRAGMA table_info(batches)")}
        assert not con.execute("SELECT name FROM sqlite_master WHERE name = 'events_by_message'").fetchall()
    store = EventStore(get_settings())
    try:
        found = store.events_for("acme-corp", "message_id", "msg-old")
        assert [(e["event_id"], e["event_type"]) for e in found] == [("old-0", "email_sent"), ("old-1", "link_click")]
        assert store.events_for("globex", "message_id", "msg-old") == []
        assert StatusIndex(path).catch_up() == 0  # already indexed: nothing twice
    finally:
        store.status.close()
    assert found[0]["occurred_at"].isoformat() == "2026-09-01T10:00:00"


def test_sigkill_of_every_worker_under_load_loses_no_acknowledged_event(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    env = {"LEADRON_SEAL_INTERVAL": "0.3", "LEADRON_LOG_LEVEL": "WARNING"}
    server = Server(home, env, workers=2)
    key = server.create_key("acme-corp")
    acked: set[str] = set()
    for rnd, seconds in enumerate([1.2, 1.7]):
        server.start()
        stop = threading.Event()
        threads = [threading.Thread(target=hammer, args=(server.url, key, stop, acked, w, rnd)) for w in range(6)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        server.kill()  # every process at once, mid-load
        stop.set()
        for t in threads:
            t.join()
        server = Server(home, env, port=server.port, workers=2)
    assert len(acked) > 300  # the load was real
    server.start()  # seals what the crashes left unsealed
    with server.client(key) as c:  # the status index of the restarted workers sees the events of the killed ones
        data = c.get(STATUS, params={"messageId": "m0"}).json()["data"]
    acked_m0 = {e for e in acked if e.startswith(("r0-w0-", "r1-w0-")) and e.count("-") == 3}  # batches of worker 0
    assert acked_m0 and data["events"]["email_open"] >= len(acked_m0)  # >=: a kill can beat an answer, not a commit
    server.stop()
    settings = use_home(monkeypatch, home)
    with sqlite3.connect(settings.api_events_path) as con:
        logged = [r[0] for r in con.execute("SELECT event_id FROM events WHERE tenant_id = 'acme-corp'")]
    assert not acked - set(logged)
    landed = duckdb.sql(
        f"SELECT DISTINCT event_id FROM read_parquet('{settings.events_landing_dir}/batch=*/*/*.parquet')"
        " WHERE tenant_id = 'acme-corp'"
    ).fetchall()
    assert not acked - {r[0] for r in landed}  # and all of them sealed into the landing zone
