"""Load benchmark of the ingestion API: acknowledged (durable) events per second.

    .venv/bin/python bench/ingest_load.py [--seconds 10] [--workers 2] [--rounds 3]

Starts `leadron serve` on 127.0.0.1 in a temporary LEADRON_HOME and drives it with wrk
(Debian package `wrk`; a C load generator, so the Python server is what is measured):
  1. reference: GET /health (the HTTP stack with no work) at the same concurrency;
  2. single-event POST /v1/analytics/events, a unique eventId per request;
  3. POST /v1/analytics/events/batch with 500 events per request (16 connections), once the server is
     quiet again (the sealer and the status index have caught up with the run before);
  4. the same batch load against bench/minimal_ingest.py on as many uvicorn workers: orjson parse, one JSON
     line per event, a group fsync, no validation or index — the ceiling the batch run is a share of.
Runs 3 and 4 alternate --rounds times (default 3); the share is the median of the rounds' shares.
Samples the server's CPU and memory with psutil, checks that the events the server
acknowledged are all in its durable log, and writes bench/results/ingest_load_<N>w.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from leadron_cli.demo_mail import free_port  # noqa: E402
from tests.api_server import Server  # noqa: E402

BENCH = Path(__file__).resolve().parent


def run_wrk(
    url: str,
    path: str,
    key: str,
    connections: int,
    seconds: int,
    script: str | None,
    proc: psutil.Process,
    wal: Path,
    env: dict[str, str] | None = None,
) -> dict:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"X-API-Key: {key}"]
    if script:
        args += ["-s", str(BENCH / script)]
    samples: list[tuple[float, float]] = []
    wal_sizes: list[int] = [0]  # the API log's WAL: must stay bounded under steady load
    stop = threading.Event()

    def sample() -> None:
        procs = [proc, *proc.children(recursive=True)]
        for p in procs:
            p.cpu_percent(None)
        while not stop.wait(0.5):
            cpu = sum(p.cpu_percent(None) for p in procs)
            rss = sum(p.memory_info().rss for p in procs) / 2**20
            samples.append((cpu, rss))
            wal_sizes.append(wal.stat().st_size if wal.exists() else 0)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = subprocess.run(
        args + [url + path], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True
    ).stdout
    stop.set()
    sampler.join()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = {p: re.search(rf"\s{re.escape(p)}\s+([\d.]+\w+)", out).group(1) for p in ("50%", "99%")}
    steady = samples[2:] or samples
    return {
        "requests_per_s": rps,
        "requests": requests,
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "latency_p50": lat["50%"],
        "latency_p99": lat["99%"],
        "connections": connections,
        "seconds": seconds,
        "server_cpu_pct_mean": round(sum(c for c, _ in steady) / len(steady), 1),
        "server_rss_mib_max": round(max(r for _, r in samples), 1),
        "log_wal_mib_max": round(max(wal_sizes) / 2**20, 1),
    }


def wait_quiet(proc: psutil.Process, limit_pct: float = 10.0, timeout_s: float = 60.0) -> float:
    """Wait until the server is idle (its sealer and status index caught up): each run starts from rest.

    Returns the seconds waited."""
    procs = [proc, *proc.children(recursive=True)]
    for p in procs:
        p.cpu_percent(None)
    waited = 0.0
    while waited < timeout_s:
        time.sleep(1.0)
        waited += 1.0
        if sum(p.cpu_percent(None) for p in procs) < limit_pct:
            break
    return waited


@contextlib.contextmanager
def minimal_server(workers: int, folder: Path) -> Iterator[tuple[str, psutil.Process]]:
    """bench/minimal_ingest.py on `workers` uvicorn workers: (its URL, its process)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.minimal_ingest:app", "--port", str(port), "--workers", str(workers),
         "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env={**os.environ, "MINIMAL_INGEST_DIR": str(folder)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("bench/minimal_ingest.py did not start") from None
                time.sleep(0.2)
        time.sleep(1)  # every worker up
        yield f"http://127.0.0.1:{port}", psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def batch_run(url: str, key: str, seconds: int, proc: psutil.Process, wal: Path) -> dict:
    """wrk's batch load (16 connections, 500 events a request) on one server."""
    result = run_wrk(url, "/v1/analytics/events/batch", key, 16, seconds, "batch.lua", proc, wal, {"BATCH_SIZE": "500"})
    result["events_per_s"] = round(result["requests_per_s"] * 500, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate batch runs on the API and the minimal endpoint"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench/ingest_load.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="leadron-bench-")) / "home"
    home.mkdir()
    server = Server(
        home,
        {"LEADRON_LOG_LEVEL": "WARNING", "LEADRON_RATE_LIMIT": "10000000", "LEADRON_RATE_BURST": "10000000"},
        workers=args.workers,
    ).start()
    try:
        key = server.create_key("bench-tenant")
        proc = psutil.Process(server.proc.pid)
        wal = home / "landing" / "api" / "events.sqlite-wal"
        results = {"reference_health_get": run_wrk(server.url, "/health", key, 128, args.seconds, None, proc, wal)}
        results["single_event"] = run_wrk(
            server.url, "/v1/analytics/events", key, 128, args.seconds, "single.lua", proc, wal
        )
        # The batch load on the API and on the minimal endpoint, alternately, `rounds` times: this machine's
        # speed drifts by tens of percent within minutes, so each round's share compares runs a few seconds
        # apart, and the headline is their median.
        minimal_dir = home.parent / "minimal"
        minimal_dir.mkdir()
        with minimal_server(args.workers, minimal_dir) as (minimal_url, minimal_proc):
            for i in range(1, args.rounds + 1):
                quiet_s = wait_quiet(proc)  # the sealer and the status index caught up: each round from rest
                batch = results[f"batch_500_round{i}"] = batch_run(server.url, key, args.seconds, proc, wal)
                batch["waited_for_quiet_s"] = quiet_s
                minimal = results[f"minimal_batch_500_round{i}"] = batch_run(
                    minimal_url, "-", args.seconds, minimal_proc, minimal_dir / "none"
                )
                batch["share_of_minimal"] = round(batch["events_per_s"] / minimal["events_per_s"], 3)
    finally:
        server.stop()
    single, ref = results["single_event"], results["reference_health_get"]
    batches = [results[f"batch_500_round{i}"] for i in range(1, args.rounds + 1)]
    share = statistics.median(b["share_of_minimal"] for b in batches)
    single["events_per_s"] = single["requests_per_s"]
    single["ratio_to_reference"] = round(single["requests_per_s"] / ref["requests_per_s"], 3)
    con = sqlite3.connect(home / "landing" / "api" / "events.sqlite")
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    acknowledged = single["requests"] - single["errors"] + sum(b["requests"] - b["errors"] for b in batches) * 500
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": f"leadron serve ({args.workers} uvicorn worker(s), uvloop + httptools), group commit to SQLite WAL, "
        "synchronous=FULL",
        "load_generator": "wrk 1 thread on the same machine",
        "results": results,
        "batch_share_of_minimal_median": share,
        "durable_log_rows": stored,
        "acknowledged_events_at_least": acknowledged,
        "minimal_lines_written": sum(len(p.read_bytes().splitlines()) for p in minimal_dir.glob("events-*.jsonl")),
    }
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    name = f"ingest_load_{args.workers}w"
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Ingestion API load benchmark",
        "",
        f"Measured {record['measured_at']} on {record['machine']['cpus']} CPUs; server ({args.workers} worker(s)) and "
        "wrk share the machine.",
        "",
        "| run | requests/s | events/s | p50 | p99 | server CPU % | server RSS MiB | log WAL MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run_name, r in results.items():
        lines.append(
            f"| {run_name} | {r['requests_per_s']:.0f} | {r.get('events_per_s', '-')} | {r['latency_p50']} | "
            f"{r['latency_p99']} | {r['server_cpu_pct_mean']} | {r['server_rss_mib_max']} | {r['log_wal_mib_max']} |"
        )
    lines += [
        "",
        f"Single-event throughput is {single['ratio_to_reference']:.2f}x the reference (GET /health, no work).",
        f"Batches: **{share:.1%}** of the minimal durable endpoint's events/s, the median of {args.rounds} rounds "
        f"({', '.join(format(b['share_of_minimal'], '.1%') for b in batches)}; each round the API then "
        "bench/minimal_ingest.py, same workers and wrk load; target >= 25%).",
        f"Durable log rows after the run: {stored:,} (acknowledged: {acknowledged:,}; the log also holds "
        "requests completed after wrk's clock stopped).",
        "",
    ]
    (out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
