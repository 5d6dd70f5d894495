"""Load benchmark of the ingestion API: acknowledged (durable) events per second.

    .venv/bin/python bench/ingest_load.py [--seconds 10]

Starts `leadron serve` on 127.0.0.1 in a temporary LEADRON_HOME and drives it with wrk
(Debian package `wrk`; a C load generator, so the Python server is what is measured):
  1. reference: GET /health (the HTTP stack with no work) at the same concurrency;
  2. single-event POST /v1/analytics/events, a unique eventId per request;
  3. POST /v1/analytics/events/batch with 500 events per request (16 connections), once the server is
     quiet again (the sealer and the status index have caught up with run 2);
  4. the same batch load against bench/minimal_ingest.py on as many uvicorn workers: orjson parse, one JSON
     line per event, a group fsync, no validation or index — the ceiling the batch run is a share of.
Samples the server's CPU and memory with psutil, checks that the events the server
acknowledged are all in its durable log, and writes bench/results/ingest_load_<N>w.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
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


def run_minimal(workers: int, seconds: int, folder: Path) -> dict:
    """bench/minimal_ingest.py on `workers` uvicorn workers under the batch run's wrk load."""
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
        proc = psutil.Process(server.pid)
        result = run_wrk(
            f"http://127.0.0.1:{port}", "/v1/analytics/events/batch", "-", 16, seconds, "batch.lua", proc,
            folder / "none", {"BATCH_SIZE": "500"},
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["events_per_s"] = round(result["requests_per_s"] * 500, 1)
    result["lines_written"] = sum(len(p.read_bytes().splitlines()) for p in folder.glob("events-*.jsonl"))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
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
        quiet_s = wait_quiet(proc)
        results["batch_500"] = run_wrk(
            server.url,
            "/v1/analytics/events/batch",
            key,
            16,
            args.seconds,
            "batch.lua",
            proc,
            wal,
            {"BATCH_SIZE": "500"},
        )
        results["batch_500"]["waited_for_quiet_s"] = quiet_s
    finally:
        server.stop()
    minimal_dir = home.parent / "minimal"
    minimal_dir.mkdir()
    results["minimal_batch_500"] = run_minimal(args.workers, args.seconds, minimal_dir)
    single, batch, ref = results["single_event"], results["batch_500"], results["reference_health_get"]
    single["events_per_s"] = single["requests_per_s"]
    batch["events_per_s"] = round(batch["requests_per_s"] * 500, 1)
    single["ratio_to_reference"] = round(single["requests_per_s"] / ref["requests_per_s"], 3)
    batch["share_of_minimal"] = round(batch["events_per_s"] / results["minimal_batch_500"]["events_per_s"], 3)
    con = sqlite3.connect(home / "landing" / "api" / "events.sqlite")
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    acknowledged = single["requests"] - single["errors"] + (batch["requests"] - batch["errors"]) * 500
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": f"leadron serve ({args.workers} uvicorn worker(s), uvloop + httptools), group commit to SQLite WAL, "
        "synchronous=FULL",
        "load_generator": "wrk 1 thread on the same machine",
        "results": results,
        "durable_log_rows": stored,
        "acknowledged_events_at_least": acknowledged,
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
        f"Batches: {batch['share_of_minimal']:.1%} of the minimal durable endpoint's events/s "
        "(bench/minimal_ingest.py, same workers and wrk load; target >= 25%).",
        f"Durable log rows after the run: {stored:,} (acknowledged: {acknowledged:,}; the log also holds "
        "requests completed after wrk's clock stopped).",
        "",
    ]
    (out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
