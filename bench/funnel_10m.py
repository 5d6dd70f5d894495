"""Custom-funnel latency on a warehouse built from ~10 million generated events.

    .venv/bin/python bench/funnel_10m.py [--events 10000000] [--home DIR]

Builds the warehouse through the normal path (generate -> import -> Dagster run) unless --home
already holds one, then times the funnel engine (leadron/funnel.py) on the event grain (marts.fct_events):
a 4-step email funnel over 90 days for the largest tenant, with and without a breakdown, and for
all tenants. Reference in the same process: one scan-and-aggregate of the same events
(count by event type for the tenant and range). Writes bench/results/funnel_10m.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int = 7) -> dict:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return {"p50_s": round(statistics.median(runs), 4), "max_s": round(max(runs), 4), "runs": repeat}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--home", default=str(ROOT / ".leadron-bench-10m"))
    args = parser.parse_args()
    os.environ["LEADRON_HOME"] = args.home
    for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME"):
        os.environ.pop(var, None)
    from leadron.settings import get_settings

    settings = get_settings()
    build_seconds = None
    if not settings.warehouse_path.exists():
        from leadron.demo_data import generate
        from leadron.importer import import_folder
        from orchestration.runner import run_build

        started = time.perf_counter()
        data = generate(settings.home / "input", events=args.events, tenants=8, seed=10, days=365, progress=print)
        assert import_folder(settings.home / "input", settings).ok
        outcome = run_build(settings, log_level="WARNING")
        assert outcome.success, outcome.failed_steps
        build_seconds = round(time.perf_counter() - started, 1)
        print(f"built from {data.events:,} event lines in {build_seconds}s")

    import duckdb

    from leadron.funnel import FunnelSpec, FunnelStep, run_funnel

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    events = con.execute("SELECT count(*) FROM marts.fct_events").fetchone()[0]
    tenant, last = con.execute(
        "SELECT tenant_id, max(occurred_at) FROM marts.fct_events GROUP BY tenant_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    start = (last - timedelta(days=90)).replace(hour=0, minute=0, second=0, microsecond=0)
    steps = [FunnelStep(event_type=t) for t in ("email_sent", "email_open", "link_click", "email_reply")]
    spec = FunnelSpec(steps=steps, window_seconds=7 * 86400, tenant_id=tenant, start=start, end=last)
    results = {
        "reference_scan_count_by_type": timed(
            lambda: con.execute(
                "SELECT event_type, count(*) FROM marts.fct_events WHERE tenant_id = ? AND occurred_at >= ? "
                "AND occurred_at < ? GROUP BY 1",
                [tenant, start, last],
            ).fetchall()
        ),
        "funnel_4_steps_90_days_one_tenant": timed(lambda: run_funnel(con, spec)),
        "funnel_4_steps_90_days_by_workflow": timed(
            lambda: run_funnel(con, spec.model_copy(update={"breakdowns": ("workflow",)}))
        ),
        "funnel_4_steps_90_days_all_tenants": timed(
            lambda: run_funnel(con, spec.model_copy(update={"tenant_id": None}))
        ),
    }
    ref = results["reference_scan_count_by_type"]["p50_s"]
    for r in results.values():
        r["ratio_to_reference"] = round(r["p50_s"] / ref, 2) if ref else None
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "events_in_staging": events,
        "largest_tenant": tenant,
        "build_seconds": build_seconds,
        "results": results,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "funnel_10m.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Funnel engine latency, ~10M events",
        "",
        f"Measured {record['measured_at']} on {record['cpus']} CPUs; {events:,} events in staging; tenant {tenant}.",
        "",
        "| query | p50 s | max s | ratio to reference scan |",
        "|---|---|---|---|",
    ]
    lines += [f"| {k} | {v['p50_s']} | {v['max_s']} | {v['ratio_to_reference']} |" for k, v in results.items()]
    (out / "funnel_10m.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
