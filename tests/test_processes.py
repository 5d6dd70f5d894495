"""The long-lived processes: `leadron up` with the Dagster daemon, and crashes at random moments (publications,
landing writes, the warehouse lock holder) that the next run cleans up after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import duckdb
import pytest

from tests.conftest import FIXTURES, leadron


# ---- production processes ------------------------------------------------------------------------------
@pytest.mark.slow
def test_leadron_up_lands_an_event_through_the_sensor_and_stops_on_sigterm(tmp_path):
    """`leadron up` starts the API, the webserver and the daemon; an event posted to the API is sealed, the
    landing sensor's refresh run publishes it, with no command typed in between; SIGTERM stops all within 10 s."""
    import httpx
    import psutil

    from leadron.publish import published_copy
    from leadron_cli.demo_mail import free_port

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR")}
    env |= {
        "LEADRON_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "LEADRON_LANDING_SENSOR_INTERVAL": "5",
        "LEADRON_SEAL_INTERVAL": "1",
        "LEADRON_LOG_LEVEL": "WARNING",
    }
    assert leadron("import", str(FIXTURES / "handmade"), env=env).returncode == 0
    assert leadron("run", env=env).returncode == 0
    key = leadron("keys", "create", "--tenant", "acme", env=env).stdout.strip()
    api_port, dagster_port = free_port(), free_port()
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "leadron_cli.main", "up", "--port", str(api_port), "--dagster-port", str(dagster_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"X-API-Key": key}, timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.2)
        event = {
            "eventId": "up-test-1",
            "eventType": "email_sent",
            "messageId": "up-msg-1",
            "leadId": "up-lead-1",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        assert client.post("/v1/analytics/events", json=event).status_code == 201

        deadline = time.monotonic() + 240
        found = []
        while not found and time.monotonic() < deadline:
            time.sleep(2)
            copy = published_copy(home / "published")
            if copy.exists():
                with duckdb.connect(str(copy), read_only=True) as con:
                    found = con.execute("SELECT event_id FROM fct_events WHERE event_id = 'up-test-1'").fetchall()
        assert found, (tmp_path / "up.log").read_text()[-5000:]
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 3
    finally:
        stopped_at = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=30)
    assert code == 0 and time.monotonic() - stopped_at < 10
    _, alive = psutil.wait_procs(children, timeout=2)
    assert not [c for c in alive if c.status() != psutil.STATUS_ZOMBIE]


PUBLISH_LOOP = """
import sys, duckdb
from pathlib import Path
from leadron.publish import publish
home = Path(sys.argv[1])
with duckdb.connect(str(home / "warehouse.duckdb")) as con:
    while True:
        publish(con, home / "published")
"""
LAND_LOOP = """
import datetime as dt
import pyarrow as pa
from leadron import landing
from leadron.settings import get_settings
settings = get_settings()
n = 5000
known = {"tenant_id": ["acme"] * n, "event_id": [f"k{i}" for i in range(n)], "event_type": ["email_sent"] * n,
         "occurred_at": [dt.datetime(2026, 3, 2)] * n, "event_date": [dt.date(2026, 3, 2)] * n,
         "received_at": [dt.datetime(2026, 3, 2)] * n}
fields = [f for f in landing.EVENT_SCHEMA if f.name != "batch_id"]
table = pa.table({f.name: pa.array(known.get(f.name, [None] * n), f.type) for f in fields})
while True:
    landing.land_events(settings, table, source="api")
"""


def _kill_at_random_moments(code: str, env: dict, rounds: int, reader) -> None:
    import random

    rng = random.Random(7)
    for _ in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", code, env["LEADRON_HOME"]], env=env)
        end = time.monotonic() + rng.uniform(1.0, 4.0)
        while time.monotonic() < end:
            reader()
        child.send_signal(signal.SIGKILL)
        child.wait()


@pytest.mark.slow
def test_sigkilled_publications_and_landing_writes_leave_nothing_and_readers_see_whole_versions(tmp_path):
    from leadron.landing import event_batches
    from leadron.publish import current_manifest, published_copy
    from leadron.retention import remove_stale_partials
    from tests.conftest import build, use_home

    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, tmp_path / "home")
        from leadron.importer import import_folder

        assert import_folder(FIXTURES / "handmade", settings).ok
        build(settings)
        env = {**os.environ, "LEADRON_HOME": str(settings.home)}
        seen: list[str] = []

        def read_whole_version() -> None:
            manifest = current_manifest(settings.publish_dir)
            folder = (settings.publish_dir / "current").resolve()
            for table in manifest["tables"].values():
                for file in table["files"]:
                    assert (folder / file["path"]).exists(), file
            with duckdb.connect(str(published_copy(settings.publish_dir)), read_only=True) as con:
                for name, table in manifest["tables"].items():
                    if con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] != table["rows"]:
                        # the link moved on between the two reads: the newer version must be whole too
                        assert current_manifest(settings.publish_dir)["version"] != manifest["version"]
            seen.append(manifest["version"])

        _kill_at_random_moments(PUBLISH_LOOP, env, 3, read_whole_version)
        before = set(event_batches(settings))
        _kill_at_random_moments(LAND_LOOP, env, 3, lambda: time.sleep(0.05))

        mp.setenv("LEADRON_STALE_PARTIAL_SECONDS", "0")  # the killed writers are gone: everything half is stale
        from leadron.settings import get_settings

        remove_stale_partials(get_settings())
        assert not list((settings.publish_dir / "versions").glob(".*"))
        assert not list(settings.events_landing_dir.rglob(".tmp-*"))
        read_whole_version()
        assert len(set(seen)) > 1  # readers read across several publications
        landed = set(event_batches(settings)) - before
        assert landed  # the writer landed batches between the kills
        for batch in landed:  # every batch that appeared is whole
            rows = duckdb.sql(
                f"SELECT count(*) FROM read_parquet('{settings.events_landing_dir}/batch={batch}/**/*.parquet')"
            ).fetchall()[0][0]
            assert rows == 5000


def test_a_writer_killed_holding_the_warehouse_lock_never_blocks_the_next(home, monkeypatch):
    """The lock is a kernel flock: it dies with its holder, whatever file a SIGKILL leaves behind."""
    from orchestration.lib.resources import writer_lock

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom leadron.settings import get_settings\n"
            "from orchestration.lib.resources import writer_lock\n"
            "with writer_lock(get_settings()):\n    print('held', flush=True)\n    time.sleep(600)\n",
        ],
        env={**os.environ, "LEADRON_HOME": str(home.home)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert home.writer_lock_path.exists()  # the lock file stays behind
    monkeypatch.setenv("LEADRON_WRITER_LOCK_TIMEOUT", "5")
    from leadron.settings import get_settings

    started = time.monotonic()
    with writer_lock(get_settings()):
        pass
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_exits_on_sigterm_within_10_s_and_seals_what_it_committed(tmp_path, workers):
    from tests.api_server import Server, post_json

    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, {"LEADRON_SEAL_INTERVAL": "3600"}, workers=workers).start()  # only the stop seals
    client = server.client(server.create_key("acme"))
    event = {"eventId": "term-1", "eventType": "email_sent", "messageId": "term-m1"}
    assert post_json(client, "/v1/analytics/events", event).status_code == 201
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (exit -15), as a service manager expects
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM) and time.monotonic() - started < 10
    landed = duckdb.sql(f"SELECT event_id FROM read_parquet('{home}/landing/events/**/*.parquet')").fetchall()
    assert landed == [("term-1",)]
