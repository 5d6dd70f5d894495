"""Full build of every mart on ~10 million events, an incremental run of one new day, and a reference.

    .venv/bin/python bench/marts_10m.py [--events 10000000] [--home DIR]

1. Generates ~10M events (8 tenants, a year) and imports all arrival days but the last.
2. Full build: the `build_warehouse` job in-process (raw load, then one `dbt build`: every model and
   every test). The dbt step is timed apart from the raw load (Dagster step events).
3. Reference, in the same process, on the same raw tables: bench/reference_marts.sql, hand-written
   DuckDB SQL that builds the same staging events and the same marts (CREATE TABLE ... AS) in a
   scratch database, no tests, no framework. Every mart is compared with the dbt one.
4. Incremental: imports the held-back last arrival day (new day plus late events and re-deliveries)
   and runs the `refresh_marts` job for the event days that batch touches, exactly as the landing sensor
   would (no lead features or scores: the daily build refreshes those).
5. Floor: steps 1, 2 and 4 again on a small warehouse (--floor-events, default 20,000): what a refresh
   run costs with almost no data (Dagster run, dbt start and parse, every model and test, publication).

Writes bench/results/marts_10m.{json,md}. Ratios are of wall-clock seconds in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE_SQL = ROOT / "bench" / "reference_marts.sql"


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds per step of a Dagster run, from its STEP_START / STEP_SUCCESS|FAILURE events."""
    import dagster as dg

    started: dict[str, float] = {}
    spent: dict[str, float] = {}
    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE},
    ).records
    for record in records:
        entry = record.event_log_entry
        key = entry.step_key
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            started[key] = entry.timestamp
        elif key in started:
            spent[key] = round(entry.timestamp - started[key], 1)
    return spent


def dbt_node_seconds() -> dict[str, float]:
    """Seconds per dbt node of the last invocation, slowest first (run_results.json of the target folder the
    in-process definitions' dbt runs write: the project's)."""
    from orchestration.lib.dbt_project import leadron_dbt_project

    results = json.loads((leadron_dbt_project().target_path / "run_results.json").read_text())["results"]
    timed = {r["unique_id"]: round(r["execution_time"], 2) for r in results}
    return dict(sorted(timed.items(), key=lambda kv: -kv[1]))


def ml_node_seconds(nodes: dict[str, float]) -> float:
    """Seconds of the lead-scoring feature model and its tests (not part of the reference's marts)."""
    return round(sum(v for k, v in nodes.items() if "ml_lead_features" in k), 1)


def run_reference(warehouse: Path, scratch: Path, as_of: str) -> float:
    """The hand-written SQL on the warehouse's raw tables, into a scratch database; seconds."""
    import duckdb

    scratch.unlink(missing_ok=True)
    statements = [s.strip() for s in REFERENCE_SQL.read_text().split(";\n") if s.strip()]
    started = time.perf_counter()
    con = duckdb.connect(str(scratch))
    con.execute("ATTACH ? AS wh (READ_ONLY)", [str(warehouse)])
    con.execute("SET VARIABLE as_of = CAST(? AS TIMESTAMP)", [as_of])
    for statement in statements:
        con.execute(statement)
    con.close()
    return time.perf_counter() - started


# (dbt mart query, reference query) per mart: the same columns, compared with EXCEPT both ways.
SAME_ROWS = {
    "fct_events": (
        "SELECT tenant_id, event_id, event_type, occurred_at, lead_id, message_id, workflow_id, step_number, user_id, "
        "team_id, lead_source, is_bot FROM wh.marts.fct_events",
        "SELECT tenant_id, event_id, event_type, occurred_at, lead_id, message_id, workflow_id, step_number, user_id, "
        "team_id, lead_source, is_bot FROM ref_fct_events",
    ),
    "mart_kpis_daily": (
        "SELECT tenant_id, kpi_date, sent, delivered, replied, bounced, unique_opens, unique_clicks, leads_contacted, "
        "leads_engaged, leads_replied, leads_converted FROM wh.marts.mart_kpis_daily",
        "SELECT tenant_id, kpi_date, emails_sent, emails_delivered, replies, bounces, unique_opens, unique_clicks, "
        "leads_contacted, leads_engaged, leads_replied, leads_converted FROM ref_kpis_daily",
    ),
    "mart_email_performance_daily": (
        "SELECT tenant_id, send_date, workflow_id, step_number, user_id, sent, bounced, delivered, opens_total, "
        "unique_opens, replied, leads_replied FROM wh.marts.mart_email_performance_daily",
        "SELECT tenant_id, send_date, workflow_id, step_number, user_id, sent, bounced, delivered, opens_total, "
        "unique_opens, replied, leads_replied FROM ref_email_performance_daily",
    ),
    "mart_activity_daily": (
        "SELECT tenant_id, event_date, event_type, events, human_events, bot_events, unique_leads "
        "FROM wh.marts.mart_activity_daily",
        "SELECT * FROM ref_activity_daily",
    ),
    "mart_cohort_retention": (
        "SELECT tenant_id, cohort_week, week_offset, cohort_size, active_leads, converted_leads "
        "FROM wh.marts.mart_cohort_retention",
        "SELECT tenant_id, cohort_week, week_offset, cohort_size, active_leads, converted_leads "
        "FROM ref_cohort_retention",
    ),
    "mart_funnel_email": (
        "SELECT tenant_id, cohort_week, workflow, step1_entities, step2_entities, step3_entities, step4_entities "
        "FROM wh.marts.mart_funnel_email",
        "SELECT tenant_id, cohort_week, workflow_id, step1, step2, step3, step4 FROM ref_funnel_email",
    ),
    "mart_funnel_web": (
        "SELECT tenant_id, cohort_week, lead_source, step1_entities, step2_entities FROM wh.marts.mart_funnel_web",
        "SELECT tenant_id, cohort_week, lead_source, step1, step2 FROM ref_funnel_web",
    ),
    "mart_team_performance": (
        "SELECT tenant_id, team_id, user_id, week_start, sent, replied, leads_converted, median_seconds_to_first_reply "
        "FROM wh.marts.mart_team_performance",
        "SELECT tenant_id, team_id, user_id, week_start, sent, replied, leads_converted, median_seconds_to_first_reply "
        "FROM ref_team_performance",
    ),
    "mart_sequence_steps": (
        "SELECT tenant_id, workflow_id, step_number, sends, executions, executions_not_yet_replied, "
        "executions_replied_at_step, executions_started, executions_replied_by_step FROM wh.marts.mart_sequence_steps",
        "SELECT tenant_id, workflow_id, step_number, sends, executions, not_yet_replied, replied_at_step, started, "
        "replied_by_step FROM ref_sequence_steps",
    ),
    "mart_form_submissions_daily": (
        "SELECT tenant_id, form_id, submission_date, submissions, unique_leads, leads_converted_afterwards "
        "FROM wh.marts.mart_form_submissions_daily",
        "SELECT * FROM ref_form_submissions_daily",
    ),
    "mart_page_visits_daily": (
        "SELECT tenant_id, page_url, visit_date, visits, unique_leads FROM wh.marts.mart_page_visits_daily",
        "SELECT * FROM ref_page_visits_daily",
    ),
    "mart_lead_engagement": (
        "SELECT tenant_id, lead_id, sends, opens, clicks, replies, form_submissions, page_visits, "
        "last_human_engagement_at, engagement_tier FROM wh.marts.mart_lead_engagement",
        "SELECT tenant_id, lead_id, coalesce(sends, 0), coalesce(opens, 0), coalesce(clicks, 0), coalesce(replies, 0), "
        "coalesce(form_submissions, 0), coalesce(page_visits, 0), last_human_engagement_at, engagement_tier "
        "FROM ref_lead_engagement",
    ),
}


def compare_marts(warehouse: Path, scratch: Path) -> dict[str, dict[str, int]]:
    """Per mart: its rows, and rows found only in the dbt mart or only in the reference (both 0 = equal)."""
    import duckdb

    con = duckdb.connect(str(scratch), read_only=True)
    con.execute("ATTACH ? AS wh (READ_ONLY)", [str(warehouse)])
    out = {}
    for mart, (dbt, ref) in SAME_ROWS.items():
        count = lambda sql: con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]  # noqa: E731
        out[mart] = {
            "rows": count(dbt),
            "only_in_dbt": count(f"{dbt} EXCEPT {ref}"),
            "only_in_reference": count(f"{ref} EXCEPT {dbt}"),
        }
    con.close()
    return out


def prepare_input(home: Path, events: int, end: date) -> tuple[Path, Path, Path]:
    """Generated input (kept between runs: deterministic) split into input/ and the held-back last arrival
    day; the warehouse home run/ starts empty and becomes LEADRON_HOME."""
    from leadron.demo_data import generate

    source, held, run_home = home / "input", home / "held-back", home / "run"
    shutil.rmtree(run_home, ignore_errors=True)
    os.environ["LEADRON_HOME"] = str(run_home)
    os.environ.pop("DAGSTER_HOME", None)  # each home its own Dagster instance
    if not held.exists():
        generate(source, events=events, tenants=8, seed=10, end=end, days=365, progress=print)
        held.mkdir()
        last_file = sorted(source.glob("events-*.jsonl"))[-1]
        shutil.move(last_file, held / last_file.name)
        for dim in source.glob("*.csv"):
            shutil.copy(dim, held / dim.name)
    return source, held, run_home


def refresh_new_day(settings, instance, defs, held: Path):
    """Import the held-back arrival day and run `refresh_marts` for the event days it touches, as the
    landing sensor would; (outcome, first day, last day)."""
    from leadron import landing
    from leadron.importer import import_folder
    from orchestration.defs.dbt.jobs import REFRESH_JOB
    from orchestration.runner import run_build

    before = set(landing.event_batches(settings))
    assert import_folder(held, settings).ok
    new = [b for b in landing.event_batches(settings) if b not in before]
    days = sorted({d for b in new for d in landing.batch_dates(settings, b)})
    outcome = run_build(
        settings, instance=instance, defs=defs, log_level="WARNING", days=(days[0], days[-1]), job_name=REFRESH_JOB
    )
    assert outcome.success and not outcome.failed_checks, outcome.failed_steps
    return outcome, days[0], days[-1]


def import_and_build(source: Path, defs):
    """Import the input folder into LEADRON_HOME and run the full build; (settings, instance, outcome)."""
    from leadron.importer import import_folder
    from leadron.settings import get_settings
    from orchestration.runner import instance_for, run_build

    settings = get_settings()
    started = time.perf_counter()
    assert import_folder(source, settings).ok
    print(f"imported in {time.perf_counter() - started:.0f}s", flush=True)
    instance = instance_for(settings)
    full = run_build(settings, instance=instance, defs=defs, log_level="WARNING")
    assert full.success and not full.failed_checks, (full.failed_steps, full.failed_checks)
    return settings, instance, full


def floor_run(home: Path, events: int, end: date, defs) -> dict:
    """A full build, then the same one-new-day refresh, on a small warehouse: the fixed cost of a refresh."""
    source, held, _ = prepare_input(home, events, end)
    settings, instance, _ = import_and_build(source, defs)
    refresh, _, _ = refresh_new_day(settings, instance, defs, held)
    return {
        "generated_events": events,
        "refresh_run_seconds": round(refresh.seconds, 1),
        "steps": step_seconds(instance, refresh.run_id),
        "dbt_nodes": len(dbt_node_seconds()),
    }


def record_floor(floor: dict) -> int:
    """bench/results/refresh_floor.{json,md}: the fixed cost of a refresh run alone (target < 10 s)."""
    record = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(), **floor}
    out = ROOT / "bench" / "results"
    (out / "refresh_floor.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# The fixed cost of a refresh run",
        "",
        f"Measured {record['measured_at']} on {record['cpus']} CPUs: a full build of {floor['generated_events']:,} "
        "generated events, then one new arrival day's `refresh_marts` run, as the landing sensor starts it.",
        "",
        f"Refresh run: **{floor['refresh_run_seconds']} s** (target < 10 s); steps: {floor['steps']}; "
        f"{floor['dbt_nodes']} dbt nodes.",
        "",
    ]
    (out / "refresh_floor.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--home", default=str(ROOT / ".leadron-bench-marts"), help="keeps input/ and held-back/")
    parser.add_argument("--end", default="2026-11-26", help="last day of generated data")
    parser.add_argument("--floor-events", type=int, default=20_000, help="events of the small warehouse (step 5)")
    parser.add_argument("--floor-only", action="store_true", help="only the fixed cost of a refresh (step 5)")
    args = parser.parse_args()
    home, end = Path(args.home), date.fromisoformat(args.end)
    os.environ["LEADRON_AS_OF"] = f"{end.isoformat()} 23:59:59"
    for var in ("LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR"):
        os.environ.pop(var, None)

    from orchestration.definitions import build_definitions

    if args.floor_only:
        return record_floor(floor_run(home / "floor", args.floor_events, end, build_definitions()))
    source, held, _ = prepare_input(home, args.events, end)
    defs = build_definitions()  # parses dbt once here, outside the timed runs

    print("full build ...", flush=True)
    settings, instance, full = import_and_build(source, defs)
    full_steps = step_seconds(instance, full.run_id)
    full_nodes = dbt_node_seconds()
    print(f"  {full.seconds:.1f}s {full_steps}", flush=True)

    print("reference ...", flush=True)
    scratch = home / "reference.duckdb"
    reference_seconds = run_reference(settings.warehouse_path, scratch, os.environ["LEADRON_AS_OF"])
    kpi_check = compare_marts(settings.warehouse_path, scratch)
    print(f"  {reference_seconds:.1f}s {kpi_check}", flush=True)

    print("incremental day ...", flush=True)
    incremental, first_day, last_day = refresh_new_day(settings, instance, defs, held)
    incremental_steps = step_seconds(instance, incremental.run_id)
    incremental_nodes = dbt_node_seconds()

    import duckdb

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    events = con.execute("SELECT count(*) FROM staging.stg_leadron__events").fetchone()[0]
    con.close()
    print("floor (the same refresh on a small warehouse) ...", flush=True)
    floor = floor_run(home / "floor", args.floor_events, end, defs)
    print(f"  {floor}", flush=True)

    dbt_full = full_steps.get("dbt_models", full.seconds)
    dbt_full_marts = round(dbt_full - ml_node_seconds(full_nodes), 1)
    dbt_incremental_marts = round(
        incremental_steps.get("dbt_models", incremental.seconds) - ml_node_seconds(incremental_nodes), 1
    )
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "events_in_staging": events,
        "full_build": {
            "run_seconds": round(full.seconds, 1),
            "steps": full_steps,
            "slowest_dbt_nodes": dict(list(full_nodes.items())[:15]),
        },
        "reference": {"seconds": round(reference_seconds, 1), "comparison_with_dbt_marts": kpi_check},
        "incremental_day": {
            "event_days": [first_day.isoformat(), last_day.isoformat()],
            "run_seconds": round(incremental.seconds, 1),
            "steps": incremental_steps,
            "slowest_dbt_nodes": dict(list(incremental_nodes.items())[:15]),
        },
        "dbt_step_without_ml_features": {"full": dbt_full_marts, "incremental": dbt_incremental_marts},
        "floor": floor,
        "ratios": {
            "full_dbt_step_to_reference": round(dbt_full / reference_seconds, 2),
            "full_dbt_step_without_ml_features_to_reference": round(dbt_full_marts / reference_seconds, 2),
            "incremental_dbt_step_to_full_dbt_step_without_ml_features": round(
                dbt_incremental_marts / dbt_full_marts, 3
            ),
            "full_run_to_reference": round(full.seconds / reference_seconds, 2),
            "incremental_run_to_full_run": round(incremental.seconds / full.seconds, 3),
            "floor_refresh_run_to_full_run": round(floor["refresh_run_seconds"] / full.seconds, 3),
        },
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "marts_10m.json").write_text(json.dumps(record, indent=2) + "\n")
    r = record["ratios"]
    lines = [
        "# All marts on ~10M events: full build, one incremental day, hand-written reference",
        "",
        f"Measured {record['measured_at']} on {record['cpus']} CPUs; {events:,} events in staging.",
        "",
        "| run | seconds |",
        "|---|---|",
        f"| full build (Dagster run: raw load + dbt build with tests) | {record['full_build']['run_seconds']} |",
        f"| of which the dbt step | {dbt_full} |",
        f"| of which the dbt step without the ML feature model (ml_lead_features and its tests) | {dbt_full_marts} |",
        f"| hand-written DuckDB reference (same marts, no tests) | {record['reference']['seconds']} |",
        f"| incremental day {first_day}..{last_day} (`refresh_marts` run, as the landing sensor starts it) | "
        f"{record['incremental_day']['run_seconds']} |",
        f"| of which the dbt step | {record['incremental_day']['steps'].get('dbt_models')} |",
        f"| the same refresh on a {floor['generated_events']:,}-event warehouse (the fixed cost of a refresh run) "
        f"| {floor['refresh_run_seconds']} |",
        f"| of which the dbt step ({floor['dbt_nodes']} models and tests) | {floor['steps'].get('dbt_models')} |",
        "",
        f"- dbt step / reference: {r['full_dbt_step_to_reference']}x; without the ML feature model (which the "
        f"reference does not build): **{r['full_dbt_step_without_ml_features_to_reference']}x** (target <= 1.35x)",
        f"- incremental dbt step / full dbt step, both without the ML feature model: "
        f"{r['incremental_dbt_step_to_full_dbt_step_without_ml_features'] * 100:.1f}%",
        f"- full run / reference: {r['full_run_to_reference']}x",
        f"- incremental day / full run: **{r['incremental_run_to_full_run'] * 100:.1f}%** (target < 5%)",
        f"- fixed cost of a refresh run / full run: {r['floor_refresh_run_to_full_run'] * 100:.1f}% (a floor under the "
        f"previous ratio, whatever the SQL does)",
        "",
        "Reference vs dbt marts (same columns, EXCEPT both ways):",
        "",
        "| mart | rows | only in dbt | only in reference |",
        "|---|---|---|---|",
        *[f"| {m} | {c['rows']} | {c['only_in_dbt']} | {c['only_in_reference']} |" for m, c in kpi_check.items()],
    ]
    (out / "marts_10m.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
