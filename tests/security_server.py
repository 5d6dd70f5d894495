"""What the security test modules share: a hardened server per module, its log, the CLI, a report body."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api_server import Server
from tests.conftest import use_home

EVENTS = "/v1/analytics/events"
STATUS = "/v1/analytics/events/status"
REPORT = {
    "name": "Weekly email",
    "metrics": ["sent", "open_rate"],
    "dimensions": ["date_day"],
    "dateRange": {"lastDays": 7},
}


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory):
    home = tmp_path_factory.mktemp("security") / "home"
    srv = Server(home, {"LEADRON_SEAL_INTERVAL": "0.5", "LEADRON_TRACKING_DEDUP_SECONDS": "3600"})
    home.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", name="secret")
def secret_fixture(server):
    with pytest.MonkeyPatch.context() as mp:
        return use_home(mp, server.home).secret()


@pytest.fixture(scope="module", name="acme")
def acme_fixture(server):
    return server.client(server.create_key("acme-corp"))


def server_log(srv: Server) -> str:
    return (srv.home.parent / f"server-{srv.port}.log").read_text(errors="replace")


def events_of(client, message_id: str) -> dict:
    return client.get(STATUS, params={"messageId": message_id}).json()["data"]["events"]


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEADRON_HOME": str(home)}
    for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", *args], env=env, input=stdin, capture_output=True, text=True
    )
