"""A real `leadron serve` process on 127.0.0.1 for the API tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from leadron_cli.demo_mail import free_port


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

    def start(self, timeout: float = 60) -> Server:
        env = {**os.environ, "LEADRON_HOME": str(self.home), **self.env}
        for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
            env.pop(var, None)
        self.log = open(self.home.parent / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "leadron_cli.main",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
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
        count = 0
        for p in [psutil.Process(self.proc.pid), *self.proc_children()]:
            try:
                connections = p.net_connections("tcp")
            except psutil.NoSuchProcess:  # a helper (multiprocessing's resource tracker) that exited meanwhile
                continue
            count += sum(1 for c in connections if c.status == psutil.CONN_LISTEN and c.laddr.port == self.port)
        return count

    def kill(self) -> None:
        """SIGKILL to the server and every worker at once: no shutdown hook runs anywhere."""
        if self.proc and self.proc.poll() is None:
            children = self.proc_children()
            self.proc.send_signal(signal.SIGKILL)
            for child in children:
                child.kill()
            self.proc.wait(timeout=30)
            psutil.wait_procs(children, timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def create_key(self, tenant: str, scopes: str | None = None) -> str:
        args = [sys.executable, "-m", "leadron_cli.main", "keys", "create", "--tenant", tenant]
        if scopes:
            args += ["--scopes", scopes]
        env = {**os.environ, "LEADRON_HOME": str(self.home)}
        return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout.strip()

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def post_json(client: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def hammer(url: str, key: str, stop: threading.Event, acked: set, worker: int, rnd: int) -> None:
    """Single events and (every tenth request) batches of 20 until `stop`; ids of the acknowledged ones into `acked`."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 10 == 0:
                    ids = [f"r{rnd}-w{worker}-{n}-{i}" for i in range(20)]
                    body = {
                        "events": [{"eventType": "email_open", "eventId": e, "messageId": f"m{worker}"} for e in ids]
                    }
                    response = client.post("/v1/analytics/events/batch", content=json.dumps(body))
                    if response.status_code == 201:
                        acked.update(ids)
                else:
                    event_id = f"r{rnd}-w{worker}-{n}"
                    response = client.post(
                        "/v1/analytics/events",
                        content=json.dumps(
                            {"eventType": "email_sent", "eventId": event_id, "messageId": f"m{worker}-{n}"}
                        ),
                    )
                    if response.status_code == 201:
                        acked.add(event_id)
            except httpx.HTTPError:
                time.sleep(0.01)  # the server is gone (killed); keep trying until told to stop
