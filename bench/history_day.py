"""A new day's `leadron run` on two histories with the same events per day: does its cost grow with history?

    .venv/bin/python bench/history_day.py [--home .leadron-bench-history]

For each history (~1M events over 36 days, ~10M over 365 days, ~27,000 a day, 8 tenants, generated with the
same seed and last day), the last arrival day's file is held back; the rest is imported and built with
`leadron run`; then the held-back day is imported and `leadron run` (no option: what landed since the last
successful run) is timed as an operator runs it, in a subprocess. The 10M input is the marts bench's
(bench/marts_10m.py, kept under .leadron-bench-marts/) when it is there. Writes
bench/results/history_day.{json,md}: seconds per run and per step, the slowest dbt nodes, and the ratio
10M / 1M (target <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.marts_10m import step_seconds  # noqa: E402
from leadron.settings import home_dbt_target_dir  # noqa: E402
from tests.cli import home_env  # noqa: E402
from tests.cli import leadron as cli  # noqa: E402

END = date(2026, 11, 26)
HISTORIES = {"1M": (1_000_000, 36), "10M": (10_000_000, 365)}
TARGET = 1.3


def prepare(folder: Path, events: int, days: int) -> tuple[Path, Path]:
    """input/ and held-back/ (the last arrival day's file and the dimension files), generated once."""
    from leadron.demo_data import generate

    source, held = folder / "input", folder / "held-back"
    if not held.exists():
        generate(source, events=events, tenants=8, seed=10, end=END, days=days, progress=print)
        held.mkdir()
        last = sorted(source.glob("events-*.jsonl"))[-1]
        shutil.move(last, held / last.name)
        for dim in source.glob("*.csv"):
            shutil.copy(dim, held / dim.name)
    return source, held


def leadron(home: Path, *args: str) -> tuple[float, str]:
    env = home_env(home, LEADRON_AS_OF=f"{END} 23:59:59", LEADRON_LOG_LEVEL="WARNING")
    started = time.perf_counter()
    done = cli(*args, env=env, timeout=None)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"leadron {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def run_details(home: Path, output: str) -> dict:
    """Step seconds (from the home's Dagster instance) and the slowest dbt nodes of the run in `output`."""
    import dagster as dg

    run_id = re.search(r"run ([0-9a-f-]{36}) in", output).group(1)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    with dg.DagsterInstance.get() as instance:
        steps = step_seconds(instance, run_id)
    # `leadron` ran with the home's own target folder (home_env passes no LEADRON_DBT_TARGET_DIR).
    results = json.loads((home_dbt_target_dir(home) / "run_results.json").read_text())["results"]
    nodes = sorted(((r["unique_id"], round(r["execution_time"], 2)) for r in results), key=lambda kv: -kv[1])
    tests = round(sum(t for k, t in nodes if k.startswith("test.")), 1)
    return {"run_id": run_id, "steps": steps, "dbt_nodes": len(nodes), "tests_seconds": tests,
            "slowest_dbt_nodes": dict(nodes[:12])}  # fmt: skip


def measure(folder: Path, events: int, days: int, source: Path | None) -> dict:
    if source is None:
        source, held = prepare(folder, events, days)
    else:
        held = source.parent / "held-back"
    home = folder / "run"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    import_seconds, _ = leadron(home, "import", str(source))
    build_seconds, _ = leadron(home, "run")
    leadron(home, "import", str(held))
    day_seconds, output = leadron(home, "run")
    days_line = re.search(r"event days (\S+)", output).group(1)
    return {
        "history_import_seconds": round(import_seconds, 1),
        "history_build_seconds": round(build_seconds, 1),
        "new_day_run_seconds": round(day_seconds, 1),
        "new_day_event_days": days_line,
        "new_day": run_details(home, output),
    }


def render(record: dict) -> str:
    results, ratio = record["histories"], record["ratio_10m_to_1m"]
    lines = [
        "# A new day's `leadron run` on 1M and 10M events of history",
        "",
        "The generator's rate: ~21,000 events a day in the 36-day history, ~27,000 in the 365-day one.",
        "",
        f"Measured {record['measured_at']} on {record['machine']['cpus']} CPUs.",
        "",
        "| history | history build s | new day `leadron run` s | raw load s | dbt s (tests) | ML scoring s "
        "| publication s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        steps = r["new_day"]["steps"]
        ml = sum(v for k, v in steps.items() if "lead_score" in k)
        lines.append(
            f"| {label} | {r['history_build_seconds']} | {r['new_day_run_seconds']} | "
            f"{steps.get('raw__events', '-')} | {steps.get('dbt_models', '-')} ({r['new_day']['tests_seconds']}) | "
            f"{round(ml, 1)} | "
            f"{steps.get('published__marts', '-')} |"
        )
    lines += ["", f"10M / 1M: **{ratio:.2f}x** (target <= {TARGET}x).", ""]
    for label, r in results.items():
        lines += [f"Slowest dbt nodes of the new day on {label}:", ""]
        lines += [f"- {k}: {v} s" for k, v in r["new_day"]["slowest_dbt_nodes"].items()] + [""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=str(ROOT / ".leadron-bench-history"))
    args = parser.parse_args()
    home = Path(args.home)
    marts_input = ROOT / ".leadron-bench-marts" / "input"
    results = {}
    for label, (events, days) in HISTORIES.items():
        reuse = marts_input if label == "10M" and (marts_input.parent / "held-back").exists() else None
        print(f"{label} history ...", flush=True)
        results[label] = measure(home / label, events, days, reuse)
        print(f"  {results[label]}", flush=True)
    ratio = results["10M"]["new_day_run_seconds"] / results["1M"]["new_day_run_seconds"]
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "histories": results,
        "ratio_10m_to_1m": round(ratio, 2),
        "target": TARGET,
    }
    out = ROOT / "bench" / "results"
    (out / "history_day.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "history_day.md").write_text(render(record))
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
