"""A real `leadron serve` process on 127.0.0.1 for the API tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    home: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    workers: int = 1
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        env = {**os.environ, "LEADRON_HOME": str(self.home), **self.env}
        for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
            env.pop(var, None)
        self.log = open(self.home.parent / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestration.cli", "serve", "--port", str(self.port),
                                      "--workers", str(self.workers)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200 and self.listening() >= self.workers:
                        return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("server did not start")

    def proc_children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def listening(self) -> int:
        """Sockets listening on the port in the server's processes (each worker has its own)."""
        procs = [psutil.Process(self.proc.pid), *self.proc_children()]
        return sum(1 for p in procs for c in p.net_connections("tcp")
                   if c.status == psutil.CONN_LISTEN and c.laddr.port == self.port)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def create_key(self, tenant: str, scopes: str | None = None) -> str:
        args = [sys.executable, "-m", "orchestration.cli", "keys", "create", "--tenant", tenant]
        if scopes:
            args += ["--scopes", scopes]
        env = {**os.environ, "LEADRON_HOME": str(self.home)}
        return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout.strip()

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def post_json(client: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json", **headers})
