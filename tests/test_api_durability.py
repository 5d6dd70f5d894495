"""A 201 means durable: SIGKILL the server under load, restart, and find every acknowledged
event in the warehouse after a pipeline run — and none twice."""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
import pytest

from tests.api_server import Server
from tests.conftest import build, query, use_home


def hammer(url: str, key: str, stop: threading.Event, acked: set, worker: int, rnd: int) -> None:
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 10 == 0:  # every tenth request is a batch of 20
                    ids = [f"r{rnd}-w{worker}-{n}-{i}" for i in range(20)]
                    body = {"events": [{"eventType": "email_open", "eventId": e, "messageId": f"m{worker}"} for e in ids]}
                    response = client.post("/v1/analytics/events/batch", content=json.dumps(body))
                    if response.status_code == 201:
                        acked.update(ids)
                else:
                    event_id = f"r{rnd}-w{worker}-{n}"
                    response = client.post("/v1/analytics/events", content=json.dumps(
                        {"eventType": "email_sent", "eventId": event_id, "messageId": f"m{worker}-{n}"}))
                    if response.status_code == 201:
                        acked.add(event_id)
            except httpx.HTTPError:
                time.sleep(0.01)  # the server is gone (killed); keep trying until told to stop


@pytest.mark.parametrize("rounds", [3])
def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path, rounds):
    home = tmp_path / "home"
    home.mkdir()
    env = {"LEADRON_SEAL_INTERVAL": "0.3", "LEADRON_LOG_LEVEL": "WARNING"}
    server = Server(home, env)
    key = server.create_key("acme-corp")
    acked: set[str] = set()
    rng = random.Random(5)
    for rnd in range(rounds):
        server.start()
        stop = threading.Event()
        workers = [threading.Thread(target=hammer, args=(server.url, key, stop, acked, w, rnd)) for w in range(6)]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(1.0, 2.0))
        server.kill()  # SIGKILL mid-load: no shutdown hook, requests in flight
        stop.set()
        for w in workers:
            w.join()
        server = Server(home, env, port=server.port)
    assert len(acked) > 500  # the load was real
    # A last start seals whatever the crashes left unsealed; a clean stop seals the rest.
    server.start()
    server.stop()
    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, home)
        build(settings)
        rows = query(settings, "SELECT event_id FROM raw.events WHERE tenant_id = 'acme-corp'")
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids))  # none twice
        missing = acked - set(ids)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
        staged = query(settings, "SELECT count(*), count(DISTINCT event_id) FROM staging.stg_leadron__events")[0]
        assert staged[0] == staged[1] == len(ids)
