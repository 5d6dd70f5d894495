"""Dashboard API latency on a warehouse of ~10 million generated events, and ingest-to-dashboard time.

    .venv/bin/python bench/api_10m.py [--home DIR] [--events 10000000] [--requests 200]

Builds the warehouse through the normal path (generate -> import -> Dagster run, which publishes)
unless --home already holds one; re-runs the build when the published copy predates fct_events. Then
starts a real `leadron serve` on 127.0.0.1 and, one request at a time, times the dashboard endpoints for
the largest tenant: KPIs for 90 days (by day; by week compared with the previous period), a 4-step
funnel over 90 days (and by workflow), cohorts and team performance for 12 weeks, plus a lead timeline
and top pages. The reference in the same process is GET /health on the same server (the HTTP floor).
Then, 30 times: POST an event and poll today's KPIs until it shows, timing from the 201 to the first
response that counts it. Writes bench/results/api_10m.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "requests": len(samples),
    }


def timed(client, path: str, params: dict, n: int, method: str = "GET", body: dict | None = None) -> dict:
    def once() -> float:
        started = time.perf_counter()
        response = client.request(method, path, params=params, json=body)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return elapsed

    for _ in range(3):
        once()  # warm-up: connection, first open of the published version
    return percentiles([once() for _ in range(n)])


def ensure_built(settings, events: int) -> float | None:
    import duckdb

    from leadron.publish import published_copy

    copy = published_copy(settings.publish_dir)
    if copy.exists():
        with duckdb.connect(str(copy), read_only=True) as con:
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'fct_events'").fetchall()[
                0
            ][0]:
                return None
    from orchestration.runner import run_build

    started = time.perf_counter()
    if not settings.warehouse_path.exists():
        from leadron.demo_data import generate
        from leadron.importer import import_folder

        generate(settings.home / "input", events=events, tenants=8, seed=10, days=365, progress=print)
        assert import_folder(settings.home / "input", settings).ok
    outcome = run_build(settings, log_level="WARNING")
    assert outcome.success, outcome.failed_steps
    return round(time.perf_counter() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--home", default=str(ROOT / ".leadron-bench-10m"))
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    os.environ["LEADRON_HOME"] = args.home
    for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
        os.environ.pop(var, None)
    os.environ["LEADRON_LOG_LEVEL"] = "WARNING"
    os.environ["LEADRON_RATE_LIMIT"] = os.environ["LEADRON_RATE_BURST"] = "1000000"
    import duckdb

    from leadron.publish import published_copy
    from leadron.settings import get_settings
    from tests.api_server import Server

    settings = get_settings()
    build_seconds = ensure_built(settings, args.events)
    with duckdb.connect(str(published_copy(settings.publish_dir)), read_only=True) as con:
        events = con.execute("SELECT count(*) FROM fct_events").fetchall()[0][0]
        tenant, last_day = con.execute(
            "SELECT tenant_id, max(event_date) FROM fct_events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()[0]
        lead = con.execute(
            "SELECT lead_id FROM fct_events WHERE tenant_id = ? AND lead_id IS NOT NULL GROUP BY 1 "
            "ORDER BY count(*) DESC LIMIT 1",
            [tenant],
        ).fetchall()[0][0]
    today = datetime.now(UTC).date()
    end = min(today, last_day)
    days90 = {"from": (end - timedelta(days=89)).isoformat(), "to": end.isoformat()}
    weeks12 = {"from": (end - timedelta(days=83)).isoformat(), "to": end.isoformat()}
    server = Server(Path(args.home), {}).start()
    try:
        client = server.client(server.create_key(tenant))
        n = args.requests
        api = "/v1/analytics"
        results = {
            "reference_health": timed(client, "/health", {}, n),
            "kpis_90_days_by_day": timed(client, f"{api}/dashboard/kpis", days90, n),
            "kpis_90_days_by_week_vs_previous": timed(
                client, f"{api}/dashboard/kpis", {**days90, "groupBy": "week", "compareTo": "previous_period"}, n
            ),
            "cohorts_12_weeks": timed(client, f"{api}/dashboard/cohorts", weeks12, n),
            "team_performance_12_weeks": timed(client, f"{api}/dashboard/team-performance", weeks12, n),
            "lead_timeline": timed(client, f"{api}/leads/{lead}/timeline", {}, n),
            "top_pages_90_days": timed(client, f"{api}/page-visits/top-pages", days90, n),
            "funnel_4_steps_90_days": timed(client, f"{api}/dashboard/funnel", days90, max(20, n // 10)),
            "funnel_4_steps_90_days_by_workflow": timed(
                client, f"{api}/dashboard/funnel", {**days90, "breakdown": "workflow"}, max(20, n // 10)
            ),
        }
        # Ingest -> visible in today's KPIs.
        today_params = {"from": today.isoformat(), "to": today.isoformat()}

        def page_visits() -> int:
            return (
                client.get(f"{api}/dashboard/kpis", params=today_params)
                .json()["data"]["today"]["events"]
                .get("page_visit", 0)
            )

        delays = []
        for i in range(30):
            before = page_visits()
            response = client.post(
                f"{api}/events",
                json={
                    "eventId": f"bench-{time.time_ns()}-{i}",
                    "eventType": "page_visit",
                    "leadId": lead,
                    "url": "https://bench.example/",
                },
            )
            assert response.status_code == 201, response.text
            accepted = time.perf_counter()
            while page_visits() == before:
                if time.perf_counter() - accepted > 30:
                    raise AssertionError("event not visible after 30 s")
            delays.append(time.perf_counter() - accepted)
        results["ingest_201_to_todays_kpis"] = percentiles(delays)
    finally:
        server.stop()
    ref = results["reference_health"]["p50_ms"]
    for r in results.values():
        r["p50_ratio_to_reference"] = round(r["p50_ms"] / ref, 1) if ref else None
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "events_published": events,
        "tenant": tenant,
        "build_seconds": build_seconds,
        "results": results,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "api_10m.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Dashboard API latency, ~10M events",
        "",
        f"Measured {record['measured_at']} on {record['cpus']} CPUs; {events:,} events published; tenant "
        f"{tenant}; one request at a time through `leadron serve` (1 worker).",
        "",
        "| request | p50 ms | p95 ms | p99 ms | max ms | requests | p50 / reference |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['p50_ms']} | {v['p95_ms']} | {v['p99_ms']} | {v['max_ms']} | {v['requests']} | "
        f"{v['p50_ratio_to_reference']} |"
        for k, v in results.items()
    ]
    (out / "api_10m.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
