"""Running it in production: Dagster's instance on PostgreSQL, retention, clean restarts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


def leadron(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.slow
def test_leadron_run_records_its_run_in_dagsters_postgres_instance(postgres, tmp_path):
    """The shipped deploy/dagster.yaml, with DAGSTER_PG_URL pointing at a real PostgreSQL database."""
    database = postgres.new_database()
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "LEADRON_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_URL": postgres.url(database, driver="postgresql+psycopg2"),
    }
    assert leadron("import", str(FIXTURES / "handmade"), env=env).returncode == 0
    run = leadron("run", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    engine = sa.create_engine(postgres.url(database))
    with engine.connect() as con:
        runs = con.execute(sa.text("SELECT pipeline_name, status FROM runs")).all()
    engine.dispose()
    assert ("build_warehouse", "SUCCESS") in [tuple(r) for r in runs]
    assert not (dagster_home / "history").exists()  # nothing went to the SQLite default
