"""The status index on its own: runs written per catch-up, merged down to MAX_RUNS, answering exactly what a plain
scan of the log answers; a merge killed half-way, retention and a log of the JSON-keys layout."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime

import numpy as np
import orjson

from api_stub.ingest_log.records import Submission, encode_events
from api_stub.ingest_log.schema import init_schema
from api_stub.ingest_log.status_index import MAX_RUNS, POSITION_BITS, StatusIndex, key
from api_stub.ingest_log.writer import EventStore
from api_stub.schemas import ApiEventIn

RECEIVED = datetime(2026, 3, 2, 10)


def submit(store: EventStore, tenant: str, batch: int, size: int) -> None:
    events = [
        ApiEventIn.model_validate_json(
            json.dumps({
                "eventId": f"{tenant}-{batch}-{i}",
                "eventType": "email_open",
                **({"messageId": f"m{(batch + i) % 7}"} if i % 3 else {}),  # every third event without one
                **({"workflowExecutionId": f"x{i % 2}"} if i % 4 else {}),
                "timestamp": "2026-03-02T10:00:00.000Z",
            })
        )
        for i in range(size)
    ]  # fmt: skip
    items = list(enumerate(events))
    store.submit(Submission(encode_events(items, tenant, RECEIVED, "api"))).result(30)


def started(settings) -> EventStore:
    """The log's writer, with its own upkeep (status index, sealer) too rare to race the test's catch-ups."""
    store = EventStore(dataclasses.replace(settings, api_status_index_interval_s=3600, api_seal_interval_s=3600))
    store.start()
    return store


def scanned(path, tenant: str, column: str, value: str) -> list[tuple[int, int]]:
    """(seq, position) of the tenant's events with that id: the log's lines read one by one."""
    field = {"message_id": "messageId", "workflow_execution_id": "workflowExecutionId"}[column]
    with sqlite3.connect(path) as con:
        batches = con.execute("SELECT seq, lines FROM batches ORDER BY seq").fetchall()
    return [
        (seq, position)
        for seq, lines in batches
        for position, line in enumerate(lines.split(b"\n"))
        if (raw := orjson.loads(line))["_t"] == tenant and raw.get(field) == value
    ]


def test_runs_merge_down_and_answer_what_a_scan_answers(home):
    store = started(home)
    index = StatusIndex(home.api_events_path)
    try:
        indexed = 0
        for batch in range(3 * MAX_RUNS):
            submit(store, ("acme", "globex")[batch % 2], batch, 1 + batch % 5)
            indexed += index.catch_up()
            assert len(index._runs()) <= MAX_RUNS
        assert index.catch_up() == 0  # nothing new: nothing indexed twice
        runs = index._runs()
        assert runs[0].first == 1 and runs[-1].last == 3 * MAX_RUNS
        assert all(a.last + 1 == b.first for a, b in zip(runs, runs[1:]))  # contiguous, no gap, no overlap
        expected_ids = 0
        ids = {"message_id": [f"m{i}" for i in range(7)], "workflow_execution_id": ["x0", "x1"]}
        for tenant in ("acme", "globex", "initech"):
            for column, values in ids.items():
                for value in values:
                    expected = scanned(home.api_events_path, tenant, column, value)
                    assert index.lookup(tenant, column, value) == expected, (tenant, column, value)
                    expected_ids += len(expected)
        assert indexed == expected_ids > 0
    finally:
        index.close()
        store.close()


def test_a_merge_killed_before_removing_its_inputs_changes_no_answer(home):
    store = started(home)
    index = StatusIndex(home.api_events_path)
    try:
        for batch in range(3):
            submit(store, "acme", batch, 4)
            index.catch_up()
        before = {value: index.lookup("acme", "message_id", value) for value in ("m1", "m2", "m3")}
        a, b, c = index._runs()
        # What a merge of the first two writes before it removes them (the process killed in between).
        keys, locations = (list(x) for x in zip(*sorted(
            (key("acme", "message_id", v), s << POSITION_BITS | p) for v, refs in before.items() for s, p in refs
            if s <= b.last
        )))  # fmt: skip
        index._write(a.first, b.last, np.array(keys, dtype=np.int64), np.array(locations, dtype=np.int64))
        assert {value: index.lookup("acme", "message_id", value) for value in before} == before
        assert [(r.first, r.last) for r in index._runs()] == [(a.first, b.last), (c.first, c.last)]
        assert not a.path.exists() and not b.path.exists()
    finally:
        index.close()
        store.close()


def test_retention_drops_the_runs_of_removed_batches_only(home):
    store = started(home)
    index = StatusIndex(home.api_events_path)
    try:
        for batch in range(3):
            submit(store, "acme", batch, 2)
            index.catch_up()
        assert index.drop_through(2) == 2
        assert [(r.first, r.last) for r in index._runs()] == [(3, 3)]
        assert index.catch_up() == 0  # the kept run still records where indexing stands
    finally:
        index.close()
        store.close()


def test_a_log_with_json_status_keys_is_indexed_from_them(home):
    path = home.api_events_path
    init_schema(path)
    line = {"_t": "acme", "_r": 0, "_s": "api", "_p": 0, "eventId": "e1", "eventType": "email_open"}
    with sqlite3.connect(path) as con:  # the layout before status_refs: [position, message key, execution key]
        con.execute(
            "INSERT INTO batches (lines, status_keys) VALUES (?, ?)",
            (orjson.dumps(line | {"messageId": "m"}), orjson.dumps([[0, key("acme", "message_id", "m"), None]])),
        )
    index = StatusIndex(path)
    try:
        assert index.catch_up() == 1
        assert index.lookup("acme", "message_id", "m") == [(1, 0)]
    finally:
        index.close()
