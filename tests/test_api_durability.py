"""A 201 means durable: SIGKILL the server under load, restart, and find every acknowledged
event in the warehouse after a pipeline run — and none twice."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.api_server import Server, hammer
from tests.conftest import build, query, use_home

pytestmark = pytest.mark.slow  # left out of `make test-quick`


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
