"""A full in-process build of generated data: the mart equals an independent Python computation."""

from __future__ import annotations

import json
import subprocess
from datetime import date

import dagster as dg
import yaml

from leadron.settings import PROJECT_ROOT, dbt_env, exported
from orchestration.lib.dbt_project import DBT_DIR, dbt_executable
from orchestration.runner import run_build
from tests.conftest import query, query_dicts
from tests.reference_metrics import email_performance

COUNTS = [
    "sent",
    "bounced",
    "hard_bounced",
    "soft_bounced",
    "delivered",
    "opens_total",
    "unique_opens",
    "clicks_total",
    "unique_clicks",
    "replied",
    "positive_replied",
    "leads_contacted",
    "leads_opened",
    "leads_clicked",
    "leads_replied",
]


def test_email_performance_mart_equals_plain_python(generated_build):
    settings, input_dir = generated_build
    expected = email_performance([input_dir], input_dir)
    rows = query_dicts(settings, "SELECT * FROM marts.mart_email_performance_daily")
    actual = {
        (r["tenant_id"], r["send_date"], r["workflow_id"], r["step_number"], r["user_id"]): {c: r[c] for c in COUNTS}
        for r in rows
    }
    assert len(actual) > 500  # a real dataset, not a trivial one
    assert actual == expected


def test_generated_data_exercises_every_rule(generated_build):
    settings, _ = generated_build
    reasons = dict(query(settings, "SELECT bot_reason, count(*) FROM staging.stg_leadron__events GROUP BY 1"))
    assert reasons.get("within_2s_of_send", 0) > 0 and reasons.get("provider_flag", 0) > 0
    assert reasons.get("scanner_user_agent", 0) > 0
    rules = dict(
        query(settings, "SELECT attribution_rule, count(*) FROM intermediate.int_replies_attributed GROUP BY 1")
    )
    assert {"message_id", "workflow_execution", "lead_recent_send"} <= set(rules)
    types = {r[0] for r in query(settings, "SELECT DISTINCT event_type FROM raw.events")}
    assert len(types) == 7
    raw, distinct = query(settings, "SELECT count(*), count(DISTINCT (tenant_id, event_id)) FROM raw.events")[0]
    assert raw == distinct
    late = query(settings, "SELECT count(*) FROM raw.events WHERE source <> 'file:events-' || event_date || '.jsonl'")[
        0
    ][0]
    assert late > 0  # events that arrived in a later day's file


def test_rerunning_a_partition_gives_identical_rows(generated_build):
    settings, _ = generated_build
    day = date(2026, 3, 10)
    snapshot = "SELECT * EXCLUDE (loaded_at) FROM raw.events WHERE event_date = ? ORDER BY tenant_id, event_id"
    # refreshed_at records when a row was re-derived (bookkeeping for the incremental marts), so it moves.
    mart = "SELECT * EXCLUDE (refreshed_at) FROM marts.mart_email_performance_daily ORDER BY performance_key"
    before_raw, before_mart = query(settings, snapshot, [day]), query(settings, mart)
    neighbour = query(
        settings, "SELECT count(*), max(loaded_at) FROM raw.events WHERE event_date = ?", [day.replace(day=11)]
    )
    outcome = run_build(settings, partition=day, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    assert outcome.success and not outcome.failed_checks
    assert query(settings, snapshot, [day]) == before_raw
    assert query(settings, mart) == before_mart
    assert len(before_raw) > 0
    # The neighbouring day was not touched (same rows, same load time).
    assert (
        query(settings, "SELECT count(*), max(loaded_at) FROM raw.events WHERE event_date = ?", [day.replace(day=11)])
        == neighbour
    )


def test_dbt_unit_tests_pass_from_the_command_line(generated_build):
    """The SQL's unit tests (kept out of production runs) run with plain `dbt test` on the built warehouse."""
    settings, _ = generated_build
    defined = sum(
        len(yaml.safe_load(p.read_text()).get("unit_tests") or []) for p in (DBT_DIR / "models").rglob("*.yml")
    )
    with exported(dbt_env(settings)):
        done = subprocess.run(
            [
                dbt_executable(),
                "test",
                "--select",
                "test_type:unit",
                "--profiles-dir",
                str(DBT_DIR),
                "--target-path",
                str(settings.dbt_target_dir),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    units = [r for r in results if r["unique_id"].startswith("unit_test.")]  # the run-start hook reports too
    passed = [r for r in units if r["status"] == "pass"]
    assert defined >= 10 and len(passed) == len(units) == defined


def test_every_models_yaml_lists_its_columns_in_built_order(generated_build):
    # The YAML documents each model's columns, and Spark's exports for the warehouse file take their column
    # order from it (macros/export_for_warehouse.sql): it must match the DuckDB build exactly.
    settings, _ = generated_build
    documented = {}
    for path in (DBT_DIR / "models").rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            documented[model["name"]] = [column["name"] for column in model.get("columns", [])]
    built = {}
    for table, column in query(
        settings,
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema IN "
        "('staging', 'intermediate', 'marts', 'ml') ORDER BY table_schema, table_name, ordinal_position",
    ):
        built.setdefault(table, []).append(column)
    models = {p.stem for p in (DBT_DIR / "models").rglob("*.sql")}
    assert models and models <= set(built)
    assert {name: documented.get(name) for name in sorted(models)} == {name: built[name] for name in sorted(models)}
