"""The read API's tenant isolation, scopes, bad input and publication following."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from tests.api_server import Server, post_json
from tests.conftest import query
from tests.read_api import (
    REPORT,
    busiest_leads,
    finished_export,
    ok,
)


# ---- isolation, scopes, bad input --------------------------------------------------------------------
def _error(response):
    body = response.json()
    return response.status_code, body["message"], body["error"]


def test_another_tenants_ids_are_404_like_missing_ones(api):
    lead = next(
        lead
        for lead in busiest_leads(api, api.a, 20)
        if not query(
            api.settings, "SELECT 1 FROM marts.mart_lead_engagement WHERE tenant_id = ? AND lead_id = ?", [api.b, lead]
        )
    )
    report = ok(post_json(api.client, "/v1/analytics/reports", REPORT), 201)["data"]["id"]
    run = ok(api.client.post(f"/v1/analytics/reports/{report}/run"), 201)["data"]["id"]
    schedule = ok(
        post_json(
            api.client,
            f"/v1/analytics/reports/{report}/schedules",
            {"cadence": "daily", "recipients": ["a@acme.example"]},
        ),
        201,
    )["data"]["id"]
    export = ok(post_json(api.client, "/v1/analytics/exports", {"dataset": "mart_kpis_daily"}), 202)["data"]["id"]
    finished_export(api.client, export)
    json_body = {"content": json.dumps(REPORT), "headers": {"Content-Type": "application/json"}}
    schedule_body = {
        "content": json.dumps({"cadence": "daily", "recipients": ["b@x.example"]}),
        "headers": {"Content-Type": "application/json"},
    }
    calls = [
        ("GET", "/v1/analytics/leads/{lead}/engagement", {}),
        ("GET", "/v1/analytics/leads/{lead}/timeline", {}),
        ("GET", "/v1/analytics/predictive/lead-scores/{lead}", {}),
        ("GET", "/v1/analytics/reports/{report}", {}),
        ("PUT", "/v1/analytics/reports/{report}", json_body),
        ("POST", "/v1/analytics/reports/{report}/run", {}),
        ("GET", "/v1/analytics/reports/{report}/runs/{run}", {}),
        ("GET", "/v1/analytics/reports/{report}/schedules", {}),
        ("POST", "/v1/analytics/reports/{report}/schedules", schedule_body),
        ("GET", "/v1/analytics/reports/{report}/schedules/{schedule}", {}),
        ("PUT", "/v1/analytics/reports/{report}/schedules/{schedule}", schedule_body),
        ("GET", "/v1/analytics/reports/{report}/schedules/{schedule}/deliveries", {}),
        ("DELETE", "/v1/analytics/reports/{report}/schedules/{schedule}", {}),
        ("DELETE", "/v1/analytics/reports/{report}", {}),
        ("GET", "/v1/analytics/exports/{export}", {}),
        ("GET", "/v1/analytics/exports/{export}/download", {}),
    ]
    ids = {"lead": lead, "report": report, "run": run, "schedule": schedule, "export": export}
    missing = {k: f"{v}x" for k, v in ids.items()}
    for method, path, kwargs in calls:
        theirs = api.other.request(method, path.format(**ids), **kwargs)
        nothing = api.other.request(method, path.format(**missing), **kwargs)
        assert theirs.status_code == 404, (method, path, theirs.text)
        assert _error(theirs) == _error(nothing), (method, path)
    # Still there for their owner.
    assert ok(api.client.get(f"/v1/analytics/reports/{report}/schedules/{schedule}"))["data"]["id"] == schedule
    assert ok(api.client.get(f"/v1/analytics/leads/{lead}/engagement"))["data"]["leadId"] == lead


def test_lists_never_show_another_tenants_rows(api):
    own = {
        r[0]
        for r in query(
            api.settings,
            "SELECT DISTINCT lead_id FROM marts.fct_events WHERE tenant_id = ? AND lead_id IS NOT NULL",
            [api.b],
        )
    }
    urls = {r[0] for r in query(api.settings, "SELECT DISTINCT url FROM marts.fct_events WHERE tenant_id = ?", [api.b])}
    params = {"from": "2026-01-01", "to": "2026-03-31", "limit": 500}
    for path in ("/v1/analytics/form-submissions", "/v1/analytics/page-visits", "/v1/analytics/predictive/lead-scores"):
        body = ok(api.other.get(path, params=params if "predictive" not in path else {"limit": 500}))
        assert body["data"] and {r["leadId"] for r in body["data"] if r["leadId"]} <= own | {
            r[0] for r in query(api.settings, "SELECT lead_id FROM marts.mart_lead_scores WHERE tenant_id = ?", [api.b])
        }
    pages = ok(api.other.get("/v1/analytics/page-visits/top-pages", params={"from": "2026-01-01", "to": "2026-03-31"}))
    assert {p["pageUrl"] for p in pages["data"]} <= urls
    sent = query(
        api.settings,
        "SELECT sum(sent) FROM marts.mart_email_performance_daily WHERE tenant_id = ? AND send_date BETWEEN ? AND ?",
        [api.b, date(2026, 1, 1), date(2026, 3, 31)],
    )[0][0]
    kpis = ok(api.other.get("/v1/analytics/dashboard/kpis", params={"from": "2026-01-01", "to": "2026-03-31"}))
    assert kpis["data"]["totals"]["sent"] == sent
    cohorts = ok(api.other.get("/v1/analytics/dashboard/cohorts", params={"from": "2026-01-01", "to": "2026-03-31"}))
    assert [(c["cohortWeek"], c["cohortSize"]) for c in cohorts["data"]["cohorts"]] == [
        (w.isoformat(), n)
        for w, n in query(
            api.settings,
            "SELECT DISTINCT cohort_week, cohort_size FROM "
            "marts.mart_cohort_retention WHERE tenant_id = ? AND "
            "cohort_week BETWEEN ? AND ? ORDER BY 1",
            [api.b, date(2026, 1, 1), date(2026, 3, 31)],
        )
    ]
    teams = ok(
        api.other.get("/v1/analytics/dashboard/team-performance", params={"from": "2026-01-01", "to": "2026-03-31"})
    )
    assert {t["teamId"] for t in teams["data"]["rows"]} == {
        r[0]
        for r in query(
            api.settings,
            "SELECT DISTINCT team_id FROM marts.mart_team_performance WHERE tenant_id = ? AND week_start "
            "BETWEEN ? AND ?",
            [api.b, date(2026, 1, 1), date(2026, 3, 31)],
        )
    }
    steps = ok(api.other.get("/v1/analytics/dashboard/funnel", params={"from": "2026-01-01", "to": "2026-03-31"}))
    assert (
        steps["data"]["steps"][0]["entities"]
        == query(
            api.settings,
            "SELECT count(DISTINCT lead_id) FROM marts.fct_events WHERE tenant_id = ? AND event_type = "
            "'email_sent' AND NOT is_bot AND occurred_at >= ? AND occurred_at < ?",
            [api.b, datetime(2026, 1, 1), datetime(2026, 4, 1)],
        )[0][0]
    )


def test_scopes(api):
    ingest_only = api.server.client(api.server.create_key(api.a, "events:write"))
    read_only = api.server.client(api.server.create_key(api.a, "analytics:read"))
    for client, method, path in (
        (ingest_only, "GET", "/v1/analytics/dashboard/kpis"),
        (ingest_only, "GET", "/v1/analytics/reports"),
        (read_only, "POST", "/v1/analytics/reports"),
        (read_only, "POST", "/v1/analytics/exports"),
        (read_only, "GET", "/v1/analytics/exports/exp_1"),
        (read_only, "POST", "/v1/analytics/events"),
    ):
        response = client.request(method, path, content=b"{}", headers={"Content-Type": "application/json"})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert ok(read_only.get("/v1/analytics/dashboard/cohorts"))
    assert api.server.client("ldr_live_sk_" + "x" * 40).get("/v1/analytics/dashboard/kpis").status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/analytics/dashboard/kpis", {"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ("/v1/analytics/dashboard/kpis", {"from": "2020-01-01", "to": "2026-03-01"}, "from"),
        ("/v1/analytics/dashboard/kpis", {"groupBy": "planet"}, "groupBy"),
        ("/v1/analytics/dashboard/kpis", {"from": "yesterday"}, "from"),
        ("/v1/analytics/page-visits", {"limit": 0}, "limit"),
        ("/v1/analytics/dashboard/funnel", {"steps": "email_sent"}, "steps"),
        ("/v1/analytics/dashboard/funnel", {"steps": "email_sent,email_teleport"}, "steps"),
        ("/v1/analytics/predictive/lead-scores", {"minScore": 101}, "minScore"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api, path, params, field):
    response = api.client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


def test_reads_follow_each_new_publication(api):
    import duckdb

    from leadron.publish import publish

    before = ok(api.client.get("/v1/analytics/dashboard/cohorts"))["meta"]["dataFreshness"]
    with duckdb.connect(str(api.home / "warehouse.duckdb")) as con:
        publication = publish(con, api.home / "published")
    after = ok(api.client.get("/v1/analytics/dashboard/cohorts"))["meta"]["dataFreshness"]
    assert before["version"] != publication.version == after["version"]
    assert after["dataFreshAsOf"] == publication.watermark


def test_nothing_published_is_a_clear_503(tmp_path):
    home = tmp_path / "empty"
    home.mkdir()
    server = Server(home, {"LEADRON_LOG_LEVEL": "WARNING"}).start()
    try:
        response = server.client(server.create_key("acme-corp")).get("/v1/analytics/dashboard/kpis")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "NOT_PUBLISHED"
    finally:
        server.stop()
