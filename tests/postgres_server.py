"""A real PostgreSQL 15 server for the tests: Debian's binaries (off PATH), `initdb` into a temporary folder as
the `postgres` user, `pg_ctl start` on a free port on 127.0.0.1. Each test gets a database of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

from leadron_cli.demo_mail import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql-15 (`dpkg -L postgresql-15`)


def _as_postgres(*args: str, **kwargs) -> subprocess.CompletedProcess:
    command = list(args)
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def _install_if_missing() -> None:
    """Debian's postgresql-15 is on these machines; a machine without it gets it here, as CI installs what it
    needs itself."""
    if (PG_BIN / "initdb").exists() or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = "apt-get install -y -q postgresql-15 || (apt-get update -q && apt-get install -y -q postgresql-15)"
    subprocess.run(["sh", "-c", command], check=True, capture_output=True, env=env, timeout=900)


class PostgresServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="leadron-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.password = uuid.uuid4().hex

    def start(self) -> PostgresServer:
        _install_if_missing()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        _as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder}"
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as con:
            con.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return name
