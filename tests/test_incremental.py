"""Incremental runs with late and re-delivered events give the same warehouse as one full build."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, datetime

import dagster as dg
import duckdb
import pytest

from leadron import landing
from leadron.demo_data import generate
from leadron.importer import import_folder
from leadron.publish import current_manifest, published_copy
from orchestration.defs.dbt.jobs import BUILD_JOB, REFRESH_JOB
from orchestration.runner import run_build
from tests.conftest import query, use_home

pytestmark = pytest.mark.slow  # left out of `make test-quick`

MARTS = [
    "mart_email_performance_daily",
    "mart_kpis_daily",
    "mart_activity_daily",
    "mart_lead_engagement",
    "mart_form_submissions_daily",
    "mart_page_visits_daily",
    "mart_cohort_retention",
    "mart_sequence_steps",
    "mart_team_performance",
    "mart_funnel_email",
    "mart_funnel_web",
]
# Incremental beyond staging (compared without receipt times, which are load times, nor int_messages'
# bookkeeping of when a row was derived and which send day it replaced, which record the run history).
INCREMENTAL = {
    "marts.fct_events": "* EXCLUDE (received_at)",
    "intermediate.int_email_sends": "*",
    "intermediate.int_replies_attributed": "*",
    "intermediate.int_messages": "* EXCLUDE (refreshed_at, replaced_send_date)",
    "intermediate.int_funnel_email_attempts": "*",
    "intermediate.int_funnel_web_attempts": "*",
    "intermediate.int_lead_weeks": "*",
    "intermediate.int_lead_days": "* EXCLUDE (engagement_at_day_end), round(engagement_at_day_end, 9)",
    "intermediate.int_execution_steps": "* EXCLUDE (refreshed_at)",
}
# Marts with a refreshed_at column (when a row was derived, which differs between the two ways by design).
REFRESHED = {"mart_email_performance_daily", "mart_kpis_daily", "mart_team_performance"}
EVENT_COLUMNS = (
    "tenant_id, event_id, event_type, lead_id, message_id, workflow_execution_id, occurred_at, "
    "event_date, is_bot, bot_reason, bounce_type, load_source, source_line"
)


def build(settings, days=None, job_name=BUILD_JOB):
    outcome = run_build(
        settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING", days=days, job_name=job_name
    )
    assert outcome.success and not outcome.failed_checks, (outcome.failed_steps, outcome.failed_checks)


def _rounded(rows: list[tuple]) -> list[tuple]:
    # Float sums (scores, averages) may differ in the last bits with the row order; 9 decimals is exact enough.
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


def snapshot(settings) -> dict[str, list]:
    tables = {"events": query(settings, f"SELECT {EVENT_COLUMNS} FROM staging.stg_leadron__events ORDER BY ALL")}
    for mart in MARTS:
        columns = "* EXCLUDE (refreshed_at)" if mart in REFRESHED else "*"
        tables[mart] = _rounded(query(settings, f"SELECT {columns} FROM marts.{mart} ORDER BY ALL"))
    for table, columns in INCREMENTAL.items():
        tables[table] = query(settings, f"SELECT {columns} FROM {table} ORDER BY ALL")
    return tables


def assert_published_equals_marts(settings) -> None:
    """The published DuckDB copy and the Parquet files hold exactly each mart's rows."""
    manifest = current_manifest(settings.publish_dir)
    con = duckdb.connect()
    con.execute("ATTACH ? AS wh (READ_ONLY)", [str(settings.warehouse_path)])
    con.execute("ATTACH ? AS pub (READ_ONLY)", [str(published_copy(settings.publish_dir))])
    assert set(manifest["tables"]) >= {"fct_events", "mart_email_performance_daily", "mart_kpis_daily"}
    for mart, entry in manifest["tables"].items():
        columns = ", ".join(f'"{c["name"]}"' for c in entry["schema"])
        files = [str(settings.publish_dir / "current" / f["path"]) for f in entry["files"]]
        marts = f'SELECT {columns} FROM wh.marts."{mart}"'
        copy = f'SELECT {columns} FROM pub.main."{mart}"'
        parquet = f"SELECT {columns} FROM read_parquet($files, hive_partitioning = true, union_by_name = true)"
        for one, other in [(marts, copy), (copy, marts), (marts, parquet), (parquet, marts)]:
            assert (
                con.execute(
                    f"SELECT count(*) FROM ({one} EXCEPT ALL {other})",
                    {"files": files} if "$files" in one + other else None,
                ).fetchone()[0]
                == 0
            ), mart
    con.close()


def lone_message(path) -> tuple[list[dict], dict]:
    """Events of a new message, from the first email_sent of a file, before the generated data starts (no other
    event of its tenant near them): a send on Tuesday 2025-12-23 and an open on Monday 2025-12-15 00:00:00.5
    (human: before the send; alone in its week). Then a second send on Sunday 2025-12-14 23:59:59.9 (another
    event id): it moves the send to another day and week and makes the open a bot (within 2 s of the send)."""
    event = next(e for e in map(json.loads, path.read_text().splitlines()) if e["eventType"] == "email_sent")
    send = {**event, "eventId": "lone-1", "messageId": "msg-lone", "timestamp": "2025-12-23T12:00:00Z"}
    opened = {**send, "eventType": "email_open", "eventId": "lone-open", "timestamp": "2025-12-15T00:00:00.500Z"}
    return [send, opened], {**send, "eventId": "lone-0", "timestamp": "2025-12-14T23:59:59.900Z"}


def test_incremental_runs_equal_a_full_build(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADRON_AS_OF", "2026-03-01 00:00:00")
    source = tmp_path / "generated"
    generate(source, events=8_000, tenants=2, seed=21, end=date(2026, 2, 28), days=60)
    files = sorted(source.glob("events-*.jsonl"))
    # A re-delivery of earlier events (same ids) and a late event for an early day, both arriving last.
    early = files[3].read_text().splitlines()
    (source / "events-zz-redelivered.jsonl").write_text("\n".join(early[:25]) + "\n")
    late_line = early[0].replace('"eventId":"', '"eventId":"late-', 1)
    (source / "events-zz-late.jsonl").write_text(late_line + "\n")
    # A message alone on its days, built; then a second, earlier send of it arrives: the old send day's
    # email-mart rows and the old week's lead activity (its open turned bot) must go.
    built, earlier_send = lone_message(files[45])
    with files[45].open("a") as f:
        f.writelines(json.dumps(e) + "\n" for e in built)
    (source / "events-zz-earlier-send.jsonl").write_text(json.dumps(earlier_send) + "\n")
    everything = sorted(source.glob("events-*.jsonl"))
    chunks = [everything[:40], everything[40:55], everything[55:]]
    dims = [p for p in source.iterdir() if p.suffix == ".csv"]

    incremental_home = use_home(monkeypatch, tmp_path / "incremental")
    for number, chunk in enumerate(chunks):
        folder = tmp_path / f"chunk{number}"
        folder.mkdir()
        for path in chunk + (dims if number == 0 else []):
            shutil.copy(path, folder / path.name)
        before = set(landing.event_batches(incremental_home))
        assert import_folder(folder, incremental_home).ok
        new = [b for b in landing.event_batches(incremental_home) if b not in before]
        touched = sorted({d for b in new for d in landing.batch_dates(incremental_home, b)})
        # The first run builds everything; later runs, like the landing sensor's, only the days their files touched.
        if number == 0:
            build(incremental_home)
        else:
            build(incremental_home, days=(touched[0], touched[-1]), job_name=REFRESH_JOB)
    incremental = snapshot(incremental_home)
    # Each run published from the previous version, replacing only the days that changed: still equal.
    assert_published_equals_marts(incremental_home)

    full_home = use_home(monkeypatch, tmp_path / "full")
    assert import_folder(source, full_home).ok
    build(full_home)
    full = snapshot(full_home)

    assert len(full["events"]) > 5_000
    for name, rows in full.items():
        assert incremental[name] == rows, name
    ids = [r[1] for r in incremental["events"]]
    assert len(ids) == len(set(ids)) and any(i.startswith("late-") for i in ids)
    lone = "SELECT sent_at, replaced_send_date, bot_opens FROM intermediate.int_messages WHERE message_id = 'msg-lone'"
    assert query(incremental_home, lone) == [(datetime(2025, 12, 14, 23, 59, 59, 900000), date(2025, 12, 23), 1)]
    lone_days = "SELECT send_date, sent FROM marts.mart_email_performance_daily WHERE send_date < '2025-12-30'"
    assert query(incremental_home, lone_days) == [(date(2025, 12, 14), 1)]
    lone_weeks = (
        "SELECT week_start, sends, human_engagements FROM intermediate.int_lead_weeks WHERE week_start < '2025-12-29' "
        "ORDER BY week_start"  # rows come in no set order without it
    )
    assert query(incremental_home, lone_weeks) == [(date(2025, 12, 8), 1, 0), (date(2025, 12, 22), 1, 0)]

    # A new leads snapshot rewrites the source of a lead with events long before the last day: the next
    # one-day run rebuilds from all history, so every one of that lead's events shows the new source.
    incremental_home = use_home(monkeypatch, tmp_path / "incremental")
    last = max(landing.event_dates(incremental_home))
    tenant, lead = query(
        incremental_home,
        "SELECT tenant_id, lead_id FROM marts.fct_events GROUP BY ALL "
        "HAVING min(event_date) < ? - 20 ORDER BY ALL LIMIT 1",
        [last],
    )[0]
    with (source / "leads.csv").open(newline="") as f:
        leads = list(csv.DictReader(f))
    for row in leads:
        if (row["tenant_id"], row["lead_id"]) == (tenant, lead):
            row["source"] = "partner-renamed"
    edited = tmp_path / "edited"
    edited.mkdir()
    with (edited / "leads.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(leads[0]))
        writer.writeheader()
        writer.writerows(leads)
    assert import_folder(edited, incremental_home).ok
    build(incremental_home, days=(last, last))
    sql = "SELECT lead_source, count(*) FROM marts.fct_events WHERE tenant_id = ? AND lead_id = ? GROUP BY 1"
    assert [r[0] for r in query(incremental_home, sql, [tenant, lead])] == ["partner-renamed"]
