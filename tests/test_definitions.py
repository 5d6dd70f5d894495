"""The Definitions load, hold every asset and check, and importing them parses nothing."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from orchestration.assets.dbt import LeadronDbtTranslator, dbt_build_args, layer_of
from orchestration.definitions import build_definitions
from orchestration.runner import partition_window, range_tags


def test_import_reads_no_settings_and_parses_no_dbt():
    code = ("import orchestration.definitions as d, orchestration.dbt_project as p;"
            "print(p.leadron_dbt_project.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "0"


def test_definitions_hold_raw_dbt_assets_checks_job_schedule_sensor(home):
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/events", "raw/leads", "raw/messages", "staging/stg_leadron__events",
            "intermediate/int_messages", "intermediate/int_replies_attributed",
            "marts/mart_email_performance_daily", "reference/scanner_user_agents", "marts/mart_funnel_email",
            "marts/mart_funnel_web", "marts/mart_kpis_daily", "marts/mart_team_performance"} <= keys
    # Lineage: the staging events model reads the raw events asset the ingest fills.
    assert dg.AssetKey(["raw", "events"]) in graph.get(dg.AssetKey(["staging", "stg_leadron__events"])).parent_keys
    checks = {c.name for c in graph.asset_check_keys}
    assert len(checks) >= 50
    assert any(c.startswith("expression_is_true_mart_email_performance_daily") for c in checks)
    assert defs.resolve_job_def("build_warehouse") is not None
    assert [s.name for s in defs.schedules] == ["build_warehouse_schedule"]
    assert [s.name for s in defs.sensors] == ["new_landing_batches"]


def test_dbt_arguments_and_keys_are_pure_functions():
    from datetime import date

    assert dbt_build_args() == ["build"]
    assert dbt_build_args(full_refresh=True) == ["build", "--full-refresh"]
    assert dbt_build_args(as_of="2026-03-31 00:00:00") == ["build", "--vars", '{"as_of": "2026-03-31 00:00:00"}']
    assert dbt_build_args(window=(date(2026, 3, 2), date(2026, 3, 4))) == [
        "build", "--vars", '{"min_date": "2026-03-02", "max_date": "2026-03-04"}']
    from orchestration.assets.dbt import run_window

    assert run_window({"dagster/asset_partition_range_start": "2026-03-02",
                       "dagster/asset_partition_range_end": "2026-03-04"}) == (date(2026, 3, 2), date(2026, 3, 4))
    assert run_window({"dagster/partition": "2026-03-03"}) == (date(2026, 3, 3), date(2026, 3, 3))
    assert run_window({}) is None
    translator = LeadronDbtTranslator()
    assert translator.get_asset_key({"resource_type": "source", "name": "events"}) == dg.AssetKey(["raw", "events"])
    model = {"resource_type": "model", "name": "mart_x", "fqn": ["leadron", "marts", "mart_x"]}
    assert translator.get_asset_key(model) == dg.AssetKey(["marts", "mart_x"]) and layer_of(model) == "marts"


def test_partition_window_covers_landed_days(home):
    from datetime import date

    from tests.conftest import FIXTURES
    from orchestration.importer import import_folder

    assert import_folder(FIXTURES / "handmade", home).ok
    assert partition_window(home, None) == (date(2026, 3, 2), date(2026, 3, 4))
    assert partition_window(home, date(2026, 3, 3)) == (date(2026, 3, 3), date(2026, 3, 3))
    assert range_tags(date(2026, 3, 2), date(2026, 3, 4)) == {
        "dagster/asset_partition_range_start": "2026-03-02", "dagster/asset_partition_range_end": "2026-03-04"}


def test_cli_help_for_every_subcommand():
    for sub in ("generate", "import", "run", "demo"):
        out = subprocess.run([sys.executable, "-m", "orchestration.cli", sub, "--help"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and "usage: leadron " + sub in out.stdout
    bad = subprocess.run([sys.executable, "-m", "orchestration.cli", "run", "--partition", "yesterday"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a date" in bad.stderr
