"""`leadron up`: the long-lived processes of a deployment, supervised together.

The API (`leadron serve --workers N`), the Dagster webserver and the Dagster daemon (which runs the sensors and
schedules: landing batches, report e-mails, drift, retention) on the same LEADRON_HOME and DAGSTER_HOME. A
process that exits is restarted; SIGTERM or SIGINT stops all three (each gets SIGTERM, then SIGKILL after
STOP_GRACE_S) and `leadron up` exits 0. A systemd unit or a Procfile can run each process instead
(deploy/).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("leadron.up")
STOP_GRACE_S = 8.0  # within the 10 s a service manager waits before it kills


@dataclass
class Service:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0


def services(host: str, api_port: int, workers: int, dagster_port: int) -> list[Service]:
    bin_dir = Path(sys.executable).parent
    module = ["-m", "orchestration.definitions"]
    return [
        Service(
            "api",
            [
                sys.executable,
                "-m",
                "leadron_cli.main",
                "serve",
                "--host",
                host,
                "--port",
                str(api_port),
                "--workers",
                str(workers),
            ],
        ),
        Service(
            "dagster-webserver", [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(dagster_port), *module]
        ),
        Service("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", *module]),
    ]


def supervise(items: list[Service], env: dict[str, str]) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    def start(service: Service) -> None:
        # A session of its own: stopping a service stops what it started too (Dagster's code servers, runs).
        service.process = subprocess.Popen(service.command, env=env, start_new_session=True)
        service.started = time.monotonic()
        log.info("started %s (pid %s)", service.name, service.process.pid)

    for service in items:
        start(service)
    while not stopping.wait(0.5):
        for service in items:
            code = service.process.poll()
            if code is None:
                continue
            if time.monotonic() - service.started < 5:  # exits at start: bad settings; do not spin
                log.error("%s exited at start with code %s; stopping everything", service.name, code)
                stopping.set()
                break
            log.warning("%s exited with code %s; starting it again", service.name, code)
            start(service)
    for service in items:
        _signal_group(service, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for service in items:
        try:
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", service.name, STOP_GRACE_S)
    for service in items:  # whatever is left of each group (a service's children included) is killed
        _signal_group(service, signal.SIGKILL)
        service.process.wait()
    return 0


def _signal_group(service: Service, signum: int) -> None:
    try:
        os.killpg(service.process.pid, signum)
    except ProcessLookupError:
        pass


def up(host: str, api_port: int, workers: int, dagster_port: int) -> int:
    from leadron.settings import get_settings
    from orchestration.runner import ensure_dagster_home

    settings = get_settings()
    ensure_dagster_home(settings)
    env = {**os.environ, "DAGSTER_HOME": str(settings.dagster_home), "LEADRON_API_WORKERS": str(workers)}
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return supervise(services(host, api_port, workers, dagster_port), env)
