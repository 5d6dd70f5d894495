"""The Definitions load, hold every asset and check, and importing them parses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import dagster as dg
import pytest

from orchestration.definitions import build_definitions
from orchestration.defs.dbt.assets import LeadronDbtTranslator, data_test_rows, dbt_build_args, layer_of
from orchestration.runner import partition_window, range_tags


def test_import_reads_no_settings_and_parses_no_dbt():
    code = (
        "import orchestration.definitions as d, orchestration.lib.dbt_project as p;"
        "print(p.leadron_dbt_project.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "0"


def test_definitions_hold_raw_dbt_assets_checks_job_schedule_sensor(home):
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "raw/events",
        "raw/leads",
        "raw/messages",
        "staging/stg_leadron__events",
        "intermediate/int_messages",
        "intermediate/int_replies_attributed",
        "marts/mart_email_performance_daily",
        "reference/scanner_user_agents",
        "marts/mart_funnel_email",
        "marts/mart_funnel_web",
        "marts/mart_kpis_daily",
        "marts/mart_team_performance",
    } <= keys
    # Lineage: the staging events model reads the raw events asset the ingest fills.
    assert dg.AssetKey(["raw", "events"]) in graph.get(dg.AssetKey(["staging", "stg_leadron__events"])).parent_keys
    checks = {c.name for c in graph.asset_check_keys}
    assert len(checks) >= 50
    assert any(c.startswith("expression_is_true_mart_email_performance_daily") for c in checks)
    assert defs.resolve_job_def("build_warehouse") is not None
    assert sorted(s.name for s in defs.schedules) == [
        "build_warehouse_schedule",
        "prune_history_schedule",
        "train_lead_score_model_schedule",
    ]
    assert sorted(s.name for s in defs.sensors) == [
        "email_data_team_on_failure",
        "lead_score_drift",
        "new_landing_batches",
        "report_schedules",
    ]
    assert defs.resolve_job_def("export_dataset") is not None and defs.resolve_job_def("deliver_report") is not None
    # Lead scoring: features from dbt feed the candidate, whose blocking check guards the promoted model;
    # the daily build scores leads but neither trains nor promotes.
    assert {"ml/ml_lead_features", "ml/lead_score_candidate", "ml/lead_score_model", "marts/mart_lead_scores"} <= keys
    assert dg.AssetKey(["ml", "ml_lead_features"]) in graph.get(dg.AssetKey(["ml", "lead_score_candidate"])).parent_keys
    promotion = dg.AssetCheckKey(dg.AssetKey(["ml", "lead_score_candidate"]), "beats_production_and_baseline")
    assert promotion in graph.asset_check_keys
    from orchestration.defs.dbt.jobs import build_warehouse_job, refresh_marts_job
    from orchestration.defs.ml.jobs import train_job

    daily = {k.to_user_string() for k in build_warehouse_job().selection.resolve(graph)}
    weekly = {k.to_user_string() for k in train_job().selection.resolve(graph)}
    refresh = {k.to_user_string() for k in refresh_marts_job().selection.resolve(graph)}
    assert "marts/mart_lead_scores" in daily and "ml/lead_score_candidate" not in daily
    # Landing batches refresh the marts and the publication; features and scores wait for the daily build.
    assert daily - refresh == {"ml/ml_lead_features", "marts/mart_lead_scores"}
    assert {"published/marts", "marts/fct_events", "raw/events"} <= refresh
    assert defs.get_sensor_def("new_landing_batches").job_name == "refresh_marts"
    assert weekly == {"ml/lead_score_candidate", "ml/lead_score_model", "marts/mart_lead_scores", "published/marts"}
    # Publication waits for every mart (a failed dbt test stops it).
    assert {k.to_user_string() for k in graph.get(dg.AssetKey(["published", "marts"])).parent_keys} >= {
        "marts/mart_kpis_daily",
        "marts/mart_funnel_email",
        "marts/mart_lead_scores",
    }


def test_dbt_arguments_and_keys_are_pure_functions(monkeypatch):
    from datetime import date

    assert dbt_build_args() == ["build", "--exclude-resource-type", "unit_test"]
    assert dbt_build_args(full_refresh=True) == ["build", "--exclude-resource-type", "unit_test", "--full-refresh"]
    from leadron.settings import dbt_env, get_settings

    assert dbt_env(get_settings())["LEADRON_AS_OF"] == ""
    monkeypatch.setenv("LEADRON_AS_OF", "2026-03-31T00:00:00+00:00")
    assert dbt_env(get_settings())["LEADRON_AS_OF"] == "2026-03-31 00:00:00"
    monkeypatch.setenv("LEADRON_AS_OF", "2026-03-31'; drop table x; --")
    with pytest.raises(ValueError, match="LEADRON_AS_OF: .* is not an ISO 8601 timestamp"):
        dbt_env(get_settings())
    monkeypatch.setenv("LEADRON_AS_OF", "")
    assert dbt_env(get_settings())["LEADRON_SPARK_WHOLE_STAGE_CODEGEN"] == "true"
    monkeypatch.setenv("LEADRON_SPARK_WHOLE_STAGE_CODEGEN", "False")
    assert dbt_env(get_settings())["LEADRON_SPARK_WHOLE_STAGE_CODEGEN"] == "false"
    monkeypatch.setenv("LEADRON_SPARK_WHOLE_STAGE_CODEGEN", "sometimes")
    with pytest.raises(ValueError, match="LEADRON_SPARK_WHOLE_STAGE_CODEGEN: 'sometimes' is not one of true, false"):
        get_settings()
    monkeypatch.delenv("LEADRON_SPARK_WHOLE_STAGE_CODEGEN")
    assert dbt_env(get_settings())["DBT_LOG_LEVEL_FILE"] == "none"  # Dagster keeps dbt's output
    monkeypatch.setenv("LEADRON_DBT_LOG_LEVEL_FILE", "Debug")
    assert dbt_env(get_settings())["DBT_LOG_LEVEL_FILE"] == "debug"
    monkeypatch.setenv("LEADRON_DBT_LOG_LEVEL_FILE", "verbose")
    with pytest.raises(ValueError, match="LEADRON_DBT_LOG_LEVEL_FILE: 'verbose' is not one of debug, info"):
        get_settings()
    monkeypatch.delenv("LEADRON_DBT_LOG_LEVEL_FILE")
    from orchestration.defs.dbt.assets import run_window, window_env

    assert window_env((date(2026, 3, 2), date(2026, 3, 4))) == {
        "LEADRON_DBT_MIN_DATE": "2026-03-02",
        "LEADRON_DBT_MAX_DATE": "2026-03-04",
    }
    assert window_env(None) == {"LEADRON_DBT_MIN_DATE": "", "LEADRON_DBT_MAX_DATE": ""}

    assert run_window(
        {"dagster/asset_partition_range_start": "2026-03-02", "dagster/asset_partition_range_end": "2026-03-04"}
    ) == (date(2026, 3, 2), date(2026, 3, 4))
    assert run_window({"dagster/partition": "2026-03-03"}) == (date(2026, 3, 3), date(2026, 3, 3))
    assert run_window({}) is None
    translator = LeadronDbtTranslator()
    assert translator.get_asset_key({"resource_type": "source", "name": "events"}) == dg.AssetKey(["raw", "events"])
    model = {"resource_type": "model", "name": "mart_x", "fqn": ["leadron", "marts", "mart_x"]}
    assert translator.get_asset_key(model) == dg.AssetKey(["marts", "mart_x"]) and layer_of(model) == "marts"


def test_partition_window_covers_landed_days(home):
    from datetime import date

    from leadron.importer import import_folder
    from tests.conftest import FIXTURES

    assert import_folder(FIXTURES / "handmade", home).ok
    assert partition_window(home, None) == (date(2026, 3, 2), date(2026, 3, 4))
    assert partition_window(home, date(2026, 3, 3)) == (date(2026, 3, 3), date(2026, 3, 3))
    assert range_tags(date(2026, 3, 2), date(2026, 3, 4)) == {
        "dagster/asset_partition_range_start": "2026-03-02",
        "dagster/asset_partition_range_end": "2026-03-04",
    }


def test_cli_help_for_every_subcommand():
    for sub in ("generate", "import", "run", "demo"):
        out = subprocess.run(
            [sys.executable, "-m", "leadron_cli.main", sub, "--help"], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0 and "usage: leadron " + sub in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", "run", "--partition", "yesterday"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_demo_gives_every_step_the_options_it_reads():
    """`leadron demo` runs generate, import, run and train with its own arguments: each step's options exist."""
    from leadron_cli.main import build_parser

    parser = build_parser()
    demo = vars(parser.parse_args(["demo"]))
    for command in (["run"], ["generate", "--out", "x"], ["import", "x"], ["train"]):
        step = vars(parser.parse_args(command))
        missing = set(step) - set(demo) - {"func", "out", "dir", "command"}
        assert not missing, (command, missing)


def test_an_unknown_dbt_target_is_refused_before_any_run(tmp_path):
    from tests.conftest import leadron

    env = {**os.environ, "LEADRON_HOME": str(tmp_path / "home"), "LEADRON_DBT_TARGET": "oracle"}
    done = leadron("run", env=env, timeout=60)
    assert done.returncode == 2 and "LEADRON_DBT_TARGET='oracle': the targets are duckdb and spark" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "home" / "dagster").exists()


def test_models_dbt_built_but_dagster_did_not_read_are_counted():
    from orchestration.defs.dbt.assets import unread_results

    results = {
        "results": [
            {"unique_id": "model.leadron.fct_events", "status": "success"},
            {"unique_id": "model.leadron.mart_kpis_daily", "status": "success"},
            {"unique_id": "model.leadron.mart_funnel_web", "status": "skipped"},
            {"unique_id": "seed.leadron.scanner_user_agents", "status": "success"},
            {"unique_id": "test.leadron.not_null_x", "status": "pass"},
            {"unique_id": "operation.leadron.leadron-on-run-start-0", "status": "success"},
        ]
    }
    assert unread_results(results, outputs=3) == 0
    assert unread_results(results, outputs=2) == 1  # one model's event was lost: the step must fail


def test_an_incremental_runs_tests_read_the_rows_it_wrote_and_the_daily_build_every_row():
    day = (date(2026, 3, 2), date(2026, 3, 2))
    assert data_test_rows(day, full_refresh=False, full_tests=False, tags={}) == "written"
    assert data_test_rows(day, full_refresh=True, full_tests=False, tags={}) == "all"
    assert data_test_rows(day, full_refresh=False, full_tests=True, tags={}) == "all"
    assert data_test_rows(None, full_refresh=False, full_tests=False, tags={}) == "all"
    assert data_test_rows(day, False, False, tags={"dagster/schedule_name": "build_warehouse_schedule"}) == "all"


def test_a_truncated_manifest_is_parsed_again(tmp_path, monkeypatch):
    """A process killed while dbt wrote target/manifest.json leaves it cut short: the next load parses again."""
    import shutil

    import orjson

    from leadron.settings import get_settings
    from orchestration.lib import dbt_project

    target = tmp_path / "target"
    dbt_project.leadron_dbt_project.cache_clear()
    shutil.copytree(dbt_project.leadron_dbt_project().target_path, target)  # a parsed target: no first parse here
    monkeypatch.setenv("LEADRON_DBT_TARGET_DIR", str(target))
    assert get_settings().dbt_target_dir == target
    manifest = target / "manifest.json"
    whole = manifest.read_bytes()
    manifest.write_bytes(whole[: len(whole) // 2])
    try:
        dbt_project.leadron_dbt_project.cache_clear()
        assert dbt_project.leadron_dbt_project().manifest_path == manifest
        assert orjson.loads(manifest.read_bytes())["metadata"]["project_name"] == "leadron"
    finally:
        dbt_project.leadron_dbt_project.cache_clear()


def test_the_dbt_resource_knows_its_dbt_version_without_starting_dbt(home):
    # LeadronDbtCli replaces two private hooks of dagster-dbt; if a new dagster-dbt renames them, this fails
    # instead of the runs silently paying for them again.
    from dagster_dbt import DbtCliResource
    from packaging import version

    from orchestration.lib.dbt_project import dbt_cli, dbt_executable, leadron_dbt_project

    assert {"_cli_version", "_initialize_dbt_core_adapter"} <= set(vars(DbtCliResource))
    known = dbt_cli(leadron_dbt_project())._cli_version
    started = subprocess.run([dbt_executable(), "--version"], capture_output=True, text=True, timeout=120, check=True)
    assert f"installed: {known}" in started.stdout.replace("- ", "")
    assert known >= version.parse("1.11")
