"""Shared fixtures: an isolated LEADRON_HOME per test and real pipeline builds."""

from __future__ import annotations

import email.policy
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from leadron.mailer import SmtpSettings
from leadron.settings import Settings, get_settings
from tests.cli import leadron  # noqa: F401 - re-exported: the tests import it from here

FIXTURES = Path(__file__).parent / "fixtures"
_HOME_VARS = ("LEADRON_HOME", "LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME")

warnings.filterwarnings("ignore", message=".*is currently in beta.*")

# Debian's chromium for the browser test, installed in the background while the other tests run. Each xdist
# worker starts the install under one lock: the first installs, the others then find chromium there.
CHROMIUM_LOG = Path(tempfile.gettempdir()) / f"leadron-chromium-install-{os.getpid()}.log"
_chromium_install: subprocess.Popen | None = None


def pytest_configure(config) -> None:
    # The in-process builds of each xdist worker write dbt's manifest, partial parse and run results into a
    # target folder of their own, so two workers' builds never read each other's (under the repository's
    # target/, which dbt's fingerprint skips); a `leadron` command on a home (tests/cli.py) uses the home's own.
    # A worker inherits the controller's environment, so this sets, not defaults.
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:
        target = Path(__file__).parents[1] / "target" / f"pytest-{worker}"
        os.environ["LEADRON_DBT_TARGET_DIR"] = os.environ["DBT_LOG_PATH"] = str(target)


def pytest_sessionstart(session) -> None:
    global _chromium_install
    if shutil.which("chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    if not hasattr(session.config, "workerinput") and session.config.getoption("numprocesses", None):
        return  # the xdist controller runs no test
    install = "apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)"
    lock_file = Path(tempfile.gettempdir()) / "leadron-chromium-install.lock"
    lock = ["flock", str(lock_file)] if shutil.which("flock") else []
    with CHROMIUM_LOG.open("w") as out:
        _chromium_install = subprocess.Popen(
            [*lock, "sh", "-c", f"command -v chromium || {{ {install}; }}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def chromium_path(timeout_s: float = 900) -> str | None:
    """chromium, once the background install (if any) has finished."""
    if _chromium_install is not None:
        try:
            _chromium_install.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
    return shutil.which("chromium")


def use_home(mp: pytest.MonkeyPatch, home: Path) -> Settings:
    for var in _HOME_VARS:
        mp.delenv(var, raising=False)
    mp.setenv("LEADRON_HOME", str(home))
    return get_settings()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing at an empty LEADRON_HOME under tmp_path."""
    return use_home(monkeypatch, tmp_path / "leadron_home")


def build(settings: Settings, partition=None):
    """A real in-process build of every asset (raw loads + dbt build) with an ephemeral instance."""
    from orchestration.runner import run_build

    outcome = run_build(settings, partition=partition, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    assert outcome.success, f"build failed at {outcome.failed_steps}"
    assert not outcome.failed_checks, outcome.failed_checks
    return outcome


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def query_dicts(settings: Settings, sql: str, params: list | None = None) -> list[dict]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _build_generated(root: Path) -> None:
    """root/input (generated) and root/home (imported and built)."""
    from datetime import date

    from leadron.demo_data import generate
    from leadron.importer import import_folder

    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, root / "home")
        generate(root / "input", events=30_000, tenants=3, seed=11, end=date(2026, 3, 31), days=90)
        assert import_folder(root / "input", settings).ok
        build(settings)


@pytest.fixture(scope="session")
def generated_build(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[tuple[Settings, Path]]:
    """A warehouse built from a small generated dataset, for the tests that read it (or rebuild a day of it).

    Built once per test run: under xdist the first worker to ask builds it in the run's shared temporary folder
    and every worker then takes its own copy (a copy takes a second, a build 30-60 s of the suite's two CPUs)."""
    from filelock import FileLock

    root = tmp_path_factory.mktemp("generated")
    if worker_id == "master":  # one process: nothing to share (and the parent folder is shared by every run)
        _build_generated(root)
    else:
        shared = tmp_path_factory.getbasetemp().parent / "generated-build"
        with FileLock(str(shared) + ".lock"):
            if not (shared / "built").exists():
                _build_generated(shared)
                (shared / "built").touch()
        for part in ("input", "home"):
            shutil.copytree(shared / part, root / part, symlinks=True)  # the publication links versions relatively
    with pytest.MonkeyPatch.context() as mp:
        yield use_home(mp, root / "home"), root / "input"
    os.environ.pop("DAGSTER_HOME", None)


class Inbox:
    """aiosmtpd handler keeping every message; `refuse` answers 451 (try again later) that many times."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse = 0
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.attempts += 1
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            inbox,
            SmtpSettings(
                host="127.0.0.1", port=port, starttls=False, user=None, password=None, sender="reports@leadron.test"
            ),
        )
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator:
    """A real PostgreSQL 15 server on 127.0.0.1 for the whole session (tests/postgres_server.py)."""
    from tests.postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_home(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An empty LEADRON_HOME whose metadata store is SQLite (the default) or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        monkeypatch.setenv("LEADRON_METADATA_URL", server.url(server.new_database()))
    else:
        monkeypatch.delenv("LEADRON_METADATA_URL", raising=False)
    return use_home(monkeypatch, tmp_path / "leadron_home")


from tests.read_api import api  # noqa: E402, F401 - the read API modules' server fixture (one per module)


def pytest_collection_modifyitems(session, config, items) -> None:
    """The Spark build, then the other slow files, then the rest: with one file per worker at a time
    (`--dist loadfile`), the longest files start first instead of ending the run on one busy worker."""
    rank = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        order = 0 if item.get_closest_marker("spark") else 1 if item.get_closest_marker("slow") else 2
        rank[module] = min(rank.get(module, order), order)
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])  # stable: a file's own order is kept
