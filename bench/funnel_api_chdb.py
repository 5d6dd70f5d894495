"""The API's funnel against ClickHouse's windowFunnel on the same published events, in one process.

    .venv/bin/python bench/funnel_api_chdb.py [--home DIR] [--requests 10]

Needs a built, published home (bench/marts_10m.py leaves one in .leadron-bench-marts/run) and chdb, a bench
dependency only (`pip install -c constraints.txt '.[bench]'`).

1. The largest tenant of the published fct_events and its first and last event day.
2. A real `leadron serve` on 127.0.0.1: POST /v1/analytics/dashboard/funnel with the default email funnel
   (email_sent -> email_open -> link_click -> email_reply, 7-day window, per lead, human events) over all of
   the tenant's days; p50 of --requests after a warm-up. The answer also carries averages and medians.
3. The reference: chdb (embedded ClickHouse) runs windowFunnel over the same tenant's published Parquet files
   of fct_events (the folder the API's published copy was written with); p50 of --requests.
4. The leads reaching each step, compared.

Writes bench/results/funnel_api_chdb.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = ["email_sent", "email_open", "link_click", "email_reply"]
WINDOW_SECONDS = 7 * 86400


def p50(run, n: int) -> tuple[float, object]:
    result = run()  # warm-up: connection, file cache, the published version's first open
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def window_funnel_sql(files: str) -> str:
    """Leads reaching each step by windowFunnel: the longest chain of the steps in order, within the window of
    its first event (timestamps in microseconds, so the window is too)."""
    conditions = ", ".join(f"event_type = '{step}'" for step in STEPS)
    types = ", ".join(f"'{step}'" for step in STEPS)
    levels = ", ".join(f"countIf(level >= {k})" for k in range(1, len(STEPS) + 1))
    return f"""
        SELECT {levels}
        FROM (
            SELECT lead_id, windowFunnel({WINDOW_SECONDS * 1_000_000})(
                toUInt64(toUnixTimestamp64Micro(occurred_at)), {conditions}) AS level
            FROM file('{files}', Parquet)
            WHERE lead_id IS NOT NULL AND NOT is_bot AND event_type IN ({types})
            GROUP BY lead_id
        )
        WHERE level > 0
    """


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=str(ROOT / ".leadron-bench-marts" / "run"))
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    home = Path(args.home).resolve()
    os.environ["LEADRON_HOME"] = str(home)
    for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
        os.environ.pop(var, None)
    import chdb
    import duckdb

    from leadron.publish import published_copy
    from tests.api_server import Server

    with duckdb.connect(str(published_copy(home / "published")), read_only=True) as con:
        events, tenant, first, last, tenant_events = con.execute(
            "SELECT sum(count(*)) OVER (), tenant_id, min(event_date), max(event_date), count(*) FROM fct_events "
            "GROUP BY tenant_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    body = {
        "steps": [{"eventType": step} for step in STEPS],
        "windowSeconds": WINDOW_SECONDS,
        "from": first.isoformat(),
        "to": last.isoformat(),
    }
    server = Server(home, {"LEADRON_LOG_LEVEL": "WARNING", "LEADRON_READ_TIMEOUT": "120"}).start()
    try:
        client = server.client(server.create_key(tenant))
        client.timeout = 120

        def api_funnel() -> dict:
            response = client.post("/v1/analytics/dashboard/funnel", json=body)
            assert response.status_code == 200, (response.status_code, response.text[:300])
            return response.json()["data"]

        api_seconds, answer = p50(api_funnel, args.requests)
    finally:
        server.stop()
    tenant_folder = (home / "published" / "current").resolve() / "parquet" / "fct_events" / f"tenant_id={tenant}"
    files = str(tenant_folder / "*" / "*.parquet")
    session = chdb.session.Session()
    sql = window_funnel_sql(files)
    chdb_seconds, chdb_answer = p50(lambda: session.query(sql, "CSV").bytes().decode().strip(), args.requests)
    session.close()
    api_counts = [step["entities"] for step in answer["steps"]]
    chdb_counts = [int(v) for v in chdb_answer.split(",")]
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "published_events": events,
        "tenant": tenant,
        "tenant_events": tenant_events,
        "days": [first.isoformat(), last.isoformat()],
        "requests": args.requests,
        "api_funnel_p50_s": round(api_seconds, 3),
        "chdb_window_funnel_p50_s": round(chdb_seconds, 3),
        "ratio": round(api_seconds / chdb_seconds, 2),
        "leads_per_step": {"api": api_counts, "chdb": chdb_counts, "equal": api_counts == chdb_counts},
        "api_medians_seconds": [step["medianSecondsFromPrevious"] for step in answer["steps"]],
    }
    out = ROOT / "bench" / "results"
    (out / "funnel_api_chdb.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# The API's funnel against ClickHouse's windowFunnel, same published events",
        "",
        f"Measured {record['measured_at']} on {record['cpus']} CPUs; {events:,} published events; tenant {tenant} "
        f"({tenant_events:,} events, {first} to {last}). Default email funnel, 7-day window, per lead, human "
        f"events, all of the tenant's days. p50 of {args.requests} after a warm-up.",
        "",
        "| run | p50 s |",
        "|---|---|",
        f"| POST /v1/analytics/dashboard/funnel (`leadron serve`, 1 worker; with averages and medians) | "
        f"{record['api_funnel_p50_s']} |",
        f"| chdb {chdb.__version__} `windowFunnel` over the tenant's published Parquet | "
        f"{record['chdb_window_funnel_p50_s']} |",
        "",
        f"- API / windowFunnel: **{record['ratio']}x** (target <= 1.5x)",
        f"- leads per step: API {api_counts}, windowFunnel {chdb_counts}: "
        + ("equal" if api_counts == chdb_counts else "**differ**"),
    ]
    (out / "funnel_api_chdb.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
