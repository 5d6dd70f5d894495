"""The funnel engine: METRICS.md's semantics on hand-made cases, and equality with a plain-Python
funnel on generated data (the engine itself, and the default email and web funnel marts)."""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta

import duckdb
import pytest
from pydantic import ValidationError

from leadron.funnel import FunnelSpec, FunnelStep, funnel_sql, run_funnel
from tests.conftest import query_dicts
from tests.reference_metrics import classified, funnel

T0 = datetime(2026, 3, 2, 10, 0, 0)


def spec(*types: str, window: int = 3600, **kw) -> FunnelSpec:
    return FunnelSpec(steps=[FunnelStep(event_type=t) for t in types], window_seconds=window, **kw)


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("CREATE SCHEMA marts")
    c.execute(
        "CREATE TABLE marts.fct_events (tenant_id VARCHAR, lead_id VARCHAR, message_id VARCHAR, "
        "event_type VARCHAR, occurred_at TIMESTAMP, url VARCHAR, form_id VARCHAR, is_bot BOOLEAN)"
    )

    def add(lead, event_type, seconds, is_bot=False, url=None):
        c.execute(
            "INSERT INTO marts.fct_events VALUES ('t1', ?, NULL, ?, ?, ?, NULL, ?)",
            [lead, event_type, T0 + timedelta(seconds=seconds), url, is_bot],
        )

    # L1 converts on its second attempt; L2's open is exactly at the window edge, its click 1 ms past it;
    # L3 opens at the send's timestamp; L4's only open is a bot.
    add("L1", "email_sent", 0)
    add("L1", "email_open", 1800)
    add("L1", "email_sent", 7200)
    add("L1", "email_open", 7800)
    add("L1", "link_click", 8400)
    add("L2", "email_sent", 0)
    add("L2", "email_open", 3600)
    add("L2", "link_click", 3600.001)
    add("L3", "email_sent", 0)
    add("L3", "email_open", 0)
    add("L4", "email_sent", 0)
    add("L4", "email_open", 60, is_bot=True)
    # Consecutive identical steps: L5 has one visit; L6 two visits at the same instant; L7 two visits then a form.
    add("L5", "page_visit", 0)
    add("L5", "form_submission", 300)
    add("L6", "page_visit", 0)
    add("L6", "page_visit", 0)
    add("L6", "form_submission", 60)
    add("L7", "page_visit", 0, url="https://a.example/pricing")
    add("L7", "page_visit", 60)
    add("L7", "form_submission", 120)
    return c


def test_attempts_window_same_timestamp_and_bots(con):
    [row] = run_funnel(con, spec("email_sent", "email_open", "link_click"))
    steps = row["steps"]
    assert [s["entities"] for s in steps] == [4, 3, 1]
    assert steps[1]["conversion_from_start"] == 0.75 and steps[2]["conversion_from_previous"] == pytest.approx(1 / 3)
    # Gaps of the attempts used: L1's second attempt (600 s), L2 (3600 s), L3 (0 s).
    assert steps[1]["avg_seconds_from_previous"] == pytest.approx((600 + 3600 + 0) / 3)
    assert steps[1]["median_seconds_from_previous"] == pytest.approx(600)
    assert steps[2]["avg_seconds_from_previous"] == pytest.approx(600)
    with_bots = run_funnel(con, spec("email_sent", "email_open", human_only=False))[0]["steps"]
    assert [s["entities"] for s in with_bots] == [4, 4]


def test_consecutive_identical_steps_need_a_later_event(con):
    [row] = run_funnel(con, spec("page_visit", "page_visit", "form_submission"))
    assert [s["entities"] for s in row["steps"]] == [3, 1, 1]
    filtered = run_funnel(
        con,
        FunnelSpec(
            steps=[
                FunnelStep(event_type="page_visit", url_contains="pricing"),
                FunnelStep(event_type="form_submission"),
            ],
            window_seconds=3600,
        ),
    )
    assert [s["entities"] for s in filtered[0]["steps"]] == [1, 1]


def test_range_is_half_open_and_values_are_bound(con):
    later = run_funnel(con, spec("email_sent", "email_open", start=T0 + timedelta(seconds=1)))
    assert [s["entities"] for s in later[0]["steps"]] == [1, 1]  # only L1's second attempt enters
    none = run_funnel(con, spec("email_sent", "email_open", end=T0))
    assert none == []
    sql, params = funnel_sql(spec("email_sent", "email_open", tenant_id="t1'; DROP TABLE x; --"))
    assert "DROP TABLE" not in sql and params["tenant"] == "t1'; DROP TABLE x; --"
    with pytest.raises(ValidationError):
        FunnelSpec(steps=[FunnelStep(event_type="email_sent")], window_seconds=3600)
    with pytest.raises(ValidationError):
        spec("email_sent", "email_open", breakdowns=("email; DROP",))


def _expected(events, steps, window, messages, dims_key):
    best = funnel(events, steps, window)
    groups: dict[tuple, list[list]] = defaultdict(list)
    for (tenant, lead), attempt in best.items():
        t1 = attempt["times"][0]
        week = (t1 - timedelta(days=t1.weekday())).date()
        groups[(tenant, week, dims_key(tenant, lead, attempt))].append(attempt["times"])
    return groups


def _compare(rows, groups, n_steps, key_name):
    actual = {(r["tenant_id"], r["cohort_week"], r[key_name]): r for r in rows}
    assert set(actual) == set(groups)
    for key, attempts in groups.items():
        row = actual[key]
        for k in range(1, n_steps + 1):
            reached = [t for t in attempts if len(t) >= k]
            assert row[f"step{k}_entities"] == len(reached), (key, k)
            if k > 1 and reached:
                gaps = [(t[k - 1] - t[k - 2]).total_seconds() for t in reached]
                assert math.isclose(row[f"step{k}_avg_seconds"], statistics.mean(gaps), rel_tol=1e-9, abs_tol=1e-6)
                assert math.isclose(row[f"step{k}_median_seconds"], statistics.median(gaps), rel_tol=1e-9, abs_tol=1e-6)


def test_default_funnel_marts_equal_plain_python(generated_build):
    settings, input_dir = generated_build
    events = classified([input_dir], input_dir)
    messages = {(r["tenant_id"], r["message_id"]): r for r in csv.DictReader((input_dir / "messages.csv").open())}
    sends = {(e["tenantId"], e["messageId"]): e for e in events if e["eventType"] == "email_sent"}
    leads = {(r["tenant_id"], r["lead_id"]): r for r in csv.DictReader((input_dir / "leads.csv").open())}

    def workflow(tenant, lead, attempt):
        key = (tenant, attempt["message"])
        return messages.get(key, {}).get("workflow_id") or sends.get(key, {}).get("workflowId")

    email = _expected(events, ["email_sent", "email_open", "link_click", "email_reply"], 7 * 86400, messages, workflow)
    _compare(query_dicts(settings, "SELECT * FROM marts.mart_funnel_email"), email, 4, "workflow")
    web = _expected(
        events,
        ["page_visit", "form_submission"],
        7 * 86400,
        messages,
        lambda tenant, lead, attempt: leads.get((tenant, lead), {}).get("source"),
    )
    _compare(query_dicts(settings, "SELECT * FROM marts.mart_funnel_web"), web, 2, "lead_source")
    assert sum(len(v) for v in email.values()) > 1000


@pytest.mark.parametrize(
    "steps",
    [
        ["email_sent", "email_open", "link_click", "email_reply"],
        ["email_sent", "email_open", "email_open", "link_click"],  # a repeated type: strictly later
        ["page_visit", "page_visit", "form_submission"],
    ],
)
def test_engine_equals_plain_python_on_generated_data(generated_build, steps):
    """Every tenant at once (the engine's grouping by tenant and entity), a 2-day window, entry over part of the
    data: entities per step, and average and median gaps, against plain Python's greedy search."""
    settings, input_dir = generated_build
    entry = (datetime(2026, 2, 1), datetime(2026, 3, 15))
    events = classified([input_dir], input_dir)
    best = funnel(events, steps, 2 * 86400, entry=entry)
    spec = FunnelSpec(
        steps=[FunnelStep(event_type=t) for t in steps], window_seconds=2 * 86400, start=entry[0], end=entry[1]
    )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = {row["tenant_id"]: row["steps"] for row in run_funnel(con, spec)}
    by_tenant: dict[str, list[list]] = defaultdict(list)
    for (tenant, _), attempt in best.items():
        by_tenant[tenant].append(attempt["times"])
    assert set(rows) == set(by_tenant) and len(by_tenant) == 3
    for tenant, attempts in by_tenant.items():
        for k, step in enumerate(rows[tenant], start=1):
            reached = [t for t in attempts if len(t) >= k]
            assert step["entities"] == len(reached), (tenant, k)
            if k > 1 and reached:
                gaps = [(t[k - 1] - t[k - 2]).total_seconds() for t in reached]
                assert math.isclose(step["avg_seconds_from_previous"], statistics.mean(gaps), rel_tol=1e-9)
                assert math.isclose(
                    step["median_seconds_from_previous"], statistics.median(gaps), rel_tol=1e-9, abs_tol=1e-6
                )
    assert sum(rows[tenant][-1]["entities"] for tenant in rows) > 0  # the last step is reached: chains were followed


def test_the_portable_funnel_sql_equals_the_asof_form(generated_build, tmp_path):
    """macros/funnel.sql's default (join + min(), what other engines run) and its DuckDB ASOF form give the same
    per-lead stage and the same marts on the same events."""
    import shutil
    import subprocess

    import duckdb

    from leadron.settings import PROJECT_ROOT, dbt_env, exported
    from orchestration.lib.dbt_project import DBT_DIR, dbt_executable

    settings, _ = generated_build
    copy = tmp_path / "portable.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    models = ["int_funnel_email_attempts", "int_funnel_web_attempts", "mart_funnel_email", "mart_funnel_web"]
    with exported({**dbt_env(settings), "LEADRON_WAREHOUSE_PATH": str(copy)}):
        done = subprocess.run(
            [
                dbt_executable(),
                "run",
                "--full-refresh",
                "--select",
                *models,
                "--vars",
                "{funnel_portable: true}",
                "--profiles-dir",
                str(DBT_DIR),
                "--target-path",
                str(tmp_path / "target"),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-3000:]
    schemas = {
        "int_funnel_email_attempts": "intermediate",
        "int_funnel_web_attempts": "intermediate",
        "mart_funnel_email": "marts",
        "mart_funnel_web": "marts",
    }
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{settings.warehouse_path}' AS by_asof (READ_ONLY)")
        con.execute(f"ATTACH '{copy}' AS portable (READ_ONLY)")
        for model, schema in schemas.items():
            columns = [r[0] for r in con.execute(f"DESCRIBE by_asof.{schema}.{model}").fetchall()]
            keys = ", ".join(c for c in columns if "seconds" not in c and "conversion" not in c)
            one = con.execute(f"SELECT * FROM by_asof.{schema}.{model} ORDER BY {keys}").fetchall()
            two = con.execute(f"SELECT * FROM portable.{schema}.{model} ORDER BY {keys}").fetchall()
            assert len(one) == len(two) > 0, model
            for a, b in zip(one, two):
                for name, x, y in zip(columns, a, b):
                    # Averages and medians of the same millisecond gaps, summed in another order: equal to 1e-12.
                    if isinstance(x, float) and isinstance(y, float):
                        assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9), (model, name, x, y)
                    else:
                        assert x == y, (model, name, x, y)
