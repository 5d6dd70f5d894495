"""Reports, schedules and deliveries (through Dagster and a real SMTP server) and exports through the API."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from leadron.settings import get_settings
from tests.api_server import post_json
from tests.conftest import query, use_home
from tests.read_api import (
    REPORT,
    finished_export,
    ok,
)


# ---- reports, schedules, deliveries, exports --------------------------------------------------------
def test_reports_schedules_and_deliveries(api, smtp, monkeypatch):
    inbox, smtp_settings = smtp
    created = ok(post_json(api.client, "/v1/analytics/reports", REPORT), 201)["data"]
    report_id = created["id"]
    assert created["metrics"] == REPORT["metrics"] and "tenantId" not in created
    assert report_id in [r["id"] for r in ok(api.client.get("/v1/analytics/reports"))["data"]]
    assert report_id not in [r["id"] for r in ok(api.other.get("/v1/analytics/reports"))["data"]]
    run = ok(api.client.post(f"/v1/analytics/reports/{report_id}/run"), 201)["data"]
    weeks = query(
        api.settings,
        "SELECT date_trunc('week', send_date), sum(sent), sum(replied), sum(delivered) FROM "
        "marts.mart_email_performance_daily WHERE tenant_id = ? AND send_date >= ? AND "
        "send_date < ? GROUP BY 1 ORDER BY 1",
        [api.a, date(2026, 2, 2), date(2026, 3, 2)],
    )
    assert [(r["date_week"], r["sent"]) for r in run["rows"]] == [(w.date().isoformat(), s) for w, s, _, _ in weeks]
    assert [r["reply_rate"] for r in run["rows"]] == pytest.approx([r / d for _, _, r, d in weeks])
    assert ok(api.client.get(f"/v1/analytics/reports/{report_id}/runs/{run['id']}"))["data"] == run
    from leadron.metric_catalogue import LABELS

    assert [f["name"] for f in run["fields"]] == list(run["rows"][0])  # a label beside each field
    assert [(f["label"], f["unit"]) for f in run["fields"]] == [
        (LABELS[n].label, LABELS[n].unit) for n in run["rows"][0]
    ]
    assert run["fields"][0] == {"name": "date_week", "label": "Week", "unit": "date"}
    updated = ok(
        api.client.put(
            f"/v1/analytics/reports/{report_id}",
            content=json.dumps({**REPORT, "name": "Weekly sends (v2)"}),
            headers={"Content-Type": "application/json"},
        )
    )["data"]
    assert updated["name"] == "Weekly sends (v2)" and updated["createdAt"] == created["createdAt"]

    schedule = ok(
        post_json(
            api.client,
            f"/v1/analytics/reports/{report_id}/schedules",
            {
                "cadence": "weekly",
                "weekday": "tue",
                "time": "08:00",
                "recipients": ["manager@acme.example"],
                "formats": ["csv"],
            },
        ),
        201,
    )["data"]
    assert [s["id"] for s in ok(api.client.get(f"/v1/analytics/reports/{report_id}/schedules"))["data"]] == [
        schedule["id"]
    ]
    # The Dagster sensor finds the API-created schedule beside the YAML ones and the job delivers it by e-mail.
    from orchestration.defs.reports.delivery import deliver_report, report_schedules

    use_home(monkeypatch, api.home)
    for key, value in {
        "LEADRON_SMTP_HOST": "127.0.0.1",
        "LEADRON_SMTP_PORT": str(smtp_settings.port),
        "LEADRON_SMTP_STARTTLS": "false",
        "LEADRON_SMTP_SENDER": "reports@leadron.test",
    }.items():
        monkeypatch.setenv(key, value)
    from leadron.report_schedules import ReportSchedule, latest_due

    # Handled last in March; every Tuesday since is missed: only the latest is delivered.
    now = datetime.now(UTC)
    fields = {k: v for k, v in schedule.items() if k not in ("reportId", "createdAt", "updatedAt")}
    due = latest_due(ReportSchedule.model_validate(fields), now - timedelta(days=8), now)
    cursor = json.dumps({f"{report_id}/{schedule['id']}": datetime(2026, 3, 10, 7, 59, tzinfo=UTC).isoformat()})
    instance = dg.DagsterInstance.ephemeral()
    tick = report_schedules.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    first = [r for r in tick.run_requests if r.run_key.startswith(f"{report_id}/")]
    assert [r.run_key for r in first] == [f"{report_id}/{schedule['id']}/{due.isoformat()}"]
    assert deliver_report.execute_in_process(run_config=first[0].run_config, instance=instance).success
    assert inbox.messages and inbox.messages[0][0] == ["manager@acme.example"]
    assert get_settings().home == api.home
    deliveries = ok(api.client.get(f"/v1/analytics/reports/{report_id}/schedules/{schedule['id']}/deliveries"))
    assert [(d["status"], d["dueAt"]) for d in deliveries["data"]] == [("sent", due.isoformat())]

    moved = ok(
        api.client.put(
            f"/v1/analytics/reports/{report_id}/schedules/{schedule['id']}",
            content=json.dumps({"cron": "0 9 * * 1", "recipients": ["ops@acme.example"]}),
            headers={"Content-Type": "application/json"},
        )
    )
    assert moved["data"]["cron"] == "0 9 * * 1" and moved["data"]["cadence"] is None
    ok(api.client.delete(f"/v1/analytics/reports/{report_id}/schedules/{schedule['id']}"))
    assert api.client.get(f"/v1/analytics/reports/{report_id}/schedules/{schedule['id']}").status_code == 404
    ok(api.client.delete(f"/v1/analytics/reports/{report_id}"))
    assert api.client.get(f"/v1/analytics/reports/{report_id}").status_code == 404
    assert api.client.get(f"/v1/analytics/reports/{report_id}/runs/{run['id']}").status_code == 404


def test_report_definitions_are_checked_against_the_catalogue(api):
    for body, field in (
        ({**REPORT, "metrics": ["nope"]}, "metrics"),
        ({**REPORT, "dimensions": ["team", "date_day"]}, "dimensions"),
        ({**REPORT, "dateRange": {"lastDays": 0}}, "dateRange.lastDays"),
        ({**REPORT, "tenantId": "someone-else"}, "tenantId"),
        ({**REPORT, "timezone": "Mars/Olympus"}, "timezone"),
    ):
        response = post_json(api.client, "/v1/analytics/reports", body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == field, response.text
    assert (
        post_json(
            api.client, "/v1/analytics/reports", {**REPORT, "dateRange": {"start": "2026-03-02", "end": "2026-02-02"}}
        ).status_code
        == 422
    )


def test_exports(api):
    started = post_json(
        api.client,
        "/v1/analytics/exports",
        {"dataset": "mart_kpis_daily", "format": "csv", "from": "2026-03-01", "to": "2026-03-07"},
    )
    body = ok(started, 202)
    assert started.headers["location"] == f"/v1/analytics/exports/{body['data']['id']}"
    data = finished_export(api.client, body["data"]["id"])
    assert data["status"] == "succeeded" and data["rowCount"] == 7
    download = api.client.get(data["downloadUrl"])
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    lines = download.text.strip().splitlines()
    expected = query(
        api.settings,
        "SELECT kpi_date, sent FROM marts.mart_kpis_daily WHERE tenant_id = ? AND kpi_date BETWEEN ? AND ? ORDER BY 1",
        [api.a, date(2026, 3, 1), date(2026, 3, 7)],
    )
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert [(r["kpi_date"], int(r["sent"])) for r in rows] == [(d.isoformat(), s) for d, s in expected]
    assert {r["tenant_id"] for r in rows} == {api.a}
    bad = post_json(api.client, "/v1/analytics/exports", {"dataset": "secrets"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "dataset"
    assert (
        post_json(
            api.client,
            "/v1/analytics/exports",
            {"dataset": "mart_kpis_daily", "from": "2026-03-02", "to": "2026-03-01"},
        ).status_code
        == 422
    )
