"""`leadron serve`: the API under uvicorn (uvloop + httptools).

With several workers each process listens on its own SO_REUSEPORT socket, so the
kernel spreads connections evenly across them. uvicorn's own `--workers` shares one
socket, and a burst of keep-alive connections (a load balancer's pool, a batch
client's connections) then lands mostly on whichever worker accepts first:
measured here, one worker at 95% CPU and the other at 20%.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

from leadron.settings import SecretError, get_settings

log = logging.getLogger("leadron.api.server")
_PR_SET_PDEATHSIG = 1


def app_factory():
    from api_stub.app import create_app

    return create_app(get_settings())


def _config(host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        "api_stub.server:app_factory",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
    )


def _reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, log_level: str, workers: int) -> None:
    os.environ["LEADRON_API_WORKERS"] = str(workers)  # each worker enforces 1/N of every rate limit
    if sys.platform == "linux":  # a worker never outlives its supervisor (even one killed with SIGKILL)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.Server(_config(host, port, log_level)).run(sockets=[_reuseport_socket(host, port)])


def _supervise(host: str, port: int, workers: int, log_level: str) -> None:
    """Start `workers` processes, restart one that dies, stop them all on SIGTERM / SIGINT."""
    # Held, never listened on: the port is ours (a clear error now if it is taken) and gets no connections.
    try:
        anchor = _reuseport_socket(host, port)
    except OSError as exc:
        raise SystemExit(f"leadron serve: cannot bind {host}:{port}: {exc.strerror}") from None
    spawn = multiprocessing.get_context("spawn")

    def start() -> multiprocessing.Process:
        proc = spawn.Process(target=_worker, args=(host, port, log_level, workers), daemon=False)
        proc.start()
        return proc

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    procs = [start() for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_failures = 0
    while not stopping.wait(0.5):
        for i, proc in enumerate(procs):
            if proc.is_alive():
                continue
            quick_failures = quick_failures + 1 if time.monotonic() - started[i] < 10 else 0
            if quick_failures > 5:  # a worker that cannot start (bad settings): stop, do not spin
                log.error("workers keep exiting at start (last exit code %s); stopping", proc.exitcode)
                stopping.set()
                break
            log.warning("worker %s exited with code %s; starting another", proc.pid, proc.exitcode)
            procs[i], started[i] = start(), time.monotonic()
    for proc in procs:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: uvicorn's graceful shutdown (in-flight requests finish)
    for proc in procs:
        proc.join(15)
        if proc.is_alive():
            proc.kill()
    anchor.close()
    if quick_failures > 5:
        raise SystemExit(1)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    settings = get_settings()
    settings.restrict_permissions()
    try:  # refuse to start with no secret, or one too short to sign with (a clear message, no traceback)
        settings.secret()
    except SecretError as exc:
        raise SystemExit(f"leadron serve: {exc}") from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if workers == 1:
        uvicorn.Server(_config(host, port, settings.log_level)).run()
    else:
        _supervise(host, port, workers, settings.log_level)
