"""The read API against a real server on a warehouse built from generated data: every endpoint's numbers
against the marts (or a plain-Python computation), tenant isolation, scopes, bad input, real-time KPIs,
reports and schedules through Dagster and a real SMTP server, exports."""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import dagster as dg
import pytest

from leadron.settings import get_settings
from tests.api_server import Server, post_json
from tests.conftest import query, query_dicts, use_home
from tests.reference_metrics import classified, funnel, read_leads, read_messages

COUNTS = (
    "sent",
    "delivered",
    "bounced",
    "hard_bounced",
    "soft_bounced",
    "opens_total",
    "unique_opens",
    "clicks_total",
    "unique_clicks",
    "replied",
    "positive_replied",
)
RATES = {
    "openRate": ("unique_opens", "delivered"),
    "clickRate": ("unique_clicks", "delivered"),
    "clickToOpenRate": ("unique_clicks", "unique_opens"),
    "replyRate": ("replied", "delivered"),
    "positiveReplyRate": ("positive_replied", "replied"),
    "bounceRate": ("bounced", "sent"),
}
FIRST, LAST = date(2026, 2, 2), date(2026, 3, 15)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@pytest.fixture(scope="module")
def api(generated_build, tmp_path_factory):
    settings, input_dir = generated_build
    root = tmp_path_factory.mktemp("api-read")
    home = root / "home"
    shutil.copytree(settings.home, home, symlinks=True)  # the server may write; the shared build stays as built
    server = Server(
        home,
        {
            "LEADRON_LOG_LEVEL": "WARNING",
            "LEADRON_RATE_LIMIT": "100000",
            "LEADRON_RATE_BURST": "100000",
            "LEADRON_SEAL_INTERVAL": "3600",
        },
    ).start()
    tenants = [
        t for (t,) in query(settings, "SELECT tenant_id FROM marts.fct_events GROUP BY 1 ORDER BY count(*) DESC")
    ]
    keys = {t: server.create_key(t) for t in tenants}
    try:
        yield SimpleNamespace(
            server=server,
            settings=settings,
            input=input_dir,
            home=home,
            a=tenants[0],
            b=tenants[1],
            keys=keys,
            client=server.client(keys[tenants[0]]),
            other=server.client(keys[tenants[1]]),
        )
    finally:
        server.stop()
    log = (root / f"server-{server.port}.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True and body["meta"]["version"] == "v1"
    return body


def rates(sums: dict, ratios=RATES) -> dict:
    return {k: (None if not sums[RATES[k][1]] else sums[RATES[k][0]] / sums[RATES[k][1]]) for k in ratios}


def assert_row(actual: dict, sums: dict, names=COUNTS, ratios=RATES) -> None:
    for name in names:
        assert actual[camel(name)] == sums[name], name
    for name, value in rates(sums, ratios).items():
        assert actual[name] == pytest.approx(value, rel=1e-12) if value is not None else actual[name] is None, name


# ---- dashboard -------------------------------------------------------------------------------------
@pytest.mark.parametrize("group", ["day", "week", "month", "workflow", "step", "rep"])
def test_kpis_equal_the_marts(api, group):
    rows = query_dicts(
        api.settings,
        "SELECT * FROM marts.mart_email_performance_daily WHERE tenant_id = ? AND send_date BETWEEN ? AND ?",
        [api.a, FIRST, LAST],
    )
    key = {
        "day": lambda r: r["send_date"].isoformat(),
        "week": lambda r: (r["send_date"] - timedelta(days=r["send_date"].weekday())).isoformat(),
        "month": lambda r: r["send_date"].replace(day=1).isoformat(),
        "workflow": lambda r: r["workflow_id"],
        "step": lambda r: r["step_number"],
        "rep": lambda r: r["user_id"],
    }[group]
    expected: dict = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    totals = dict.fromkeys(COUNTS, 0)
    for r in rows:
        for c in COUNTS:
            expected[key(r)][c] += r[c]
            totals[c] += r[c]
    body = ok(
        api.client.get(
            "/v1/analytics/dashboard/kpis", params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "groupBy": group}
        )
    )
    data = body["data"]
    column = {"day": "dateDay", "week": "dateWeek", "month": "dateMonth"}.get(group, group)
    got = {r[column]: r for r in data["series"]}
    assert set(got) == set(expected) and len(got) > 1
    for k, sums in expected.items():
        assert_row(got[k], sums)
    assert_row(data["totals"], totals)
    assert "today" not in data  # the range ends before today
    assert body["meta"]["dataFreshness"]["version"] and body["meta"]["dataFreshness"]["dataFreshAsOf"]


def test_kpis_compare_to_the_previous_period(api):
    body = ok(
        api.client.get(
            "/v1/analytics/dashboard/kpis",
            params={"from": "2026-03-01", "to": "2026-03-14", "groupBy": "week", "compareTo": "previous_period"},
        )
    )["data"]

    def total(first, last):
        [row] = query_dicts(
            api.settings,
            f"SELECT {', '.join(f'sum({c}) AS {c}' for c in COUNTS)} FROM "
            "marts.mart_email_performance_daily WHERE tenant_id = ? AND send_date "
            "BETWEEN ? AND ?",
            [api.a, first, last],
        )
        return row

    now, before = total(date(2026, 3, 1), date(2026, 3, 14)), total(date(2026, 2, 15), date(2026, 2, 28))
    comparison = body["comparison"]
    assert (comparison["from"], comparison["to"]) == ("2026-02-15", "2026-02-28")
    assert_row(body["totals"], now)
    assert_row(comparison["totals"], before)
    assert comparison["change"]["sent"] == pytest.approx((now["sent"] - before["sent"]) / before["sent"])


def test_team_performance_and_kpis_by_team_equal_the_mart(api):
    rows = query_dicts(
        api.settings,
        "SELECT * FROM marts.mart_team_performance WHERE tenant_id = ? AND week_start BETWEEN ? AND ?",
        [api.a, FIRST, LAST],
    )
    names = ("sent", "delivered", "bounced", "unique_opens", "unique_clicks", "replied")
    for group, column in (("team", "team_id"), ("rep", "user_id")):
        expected: dict = defaultdict(lambda: dict.fromkeys(names, 0))
        for r in rows:
            for c in names:
                expected[r[column]][c] += r[c]
        data = ok(
            api.client.get(
                "/v1/analytics/dashboard/team-performance",
                params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "groupBy": group},
            )
        )["data"]
        got = {r[camel(column)]: r for r in data["rows"]}
        assert set(got) == set(expected)
        for k, sums in expected.items():
            assert_row(got[k], sums, names, ("openRate", "clickRate", "replyRate", "bounceRate"))
            assert (
                got[k]["touchesPerReply"] == pytest.approx(sums["sent"] / sums["replied"])
                if sums["replied"]
                else got[k]["touchesPerReply"] is None
            )
    team = rows[0]["team_id"]
    data = ok(
        api.client.get(
            "/v1/analytics/dashboard/team-performance",
            params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "groupBy": "rep", "teamId": team},
        )
    )["data"]
    assert {r["userId"] for r in data["rows"]} == {r["user_id"] for r in rows if r["team_id"] == team}
    by_team = ok(
        api.client.get(
            "/v1/analytics/dashboard/kpis",
            params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "groupBy": "team"},
        )
    )["data"]["series"]
    assert sum(r["sent"] for r in by_team) == sum(r["sent"] for r in rows)


def test_cohorts_equal_the_mart(api):
    rows = query_dicts(
        api.settings,
        "SELECT * FROM marts.mart_cohort_retention WHERE tenant_id = ? AND cohort_week "
        "BETWEEN ? AND ? ORDER BY cohort_week, week_offset",
        [api.a, FIRST, LAST],
    )
    for metric, count, rate in (
        ("retention", "active_leads", "retention_rate"),
        ("conversion", "converted_leads", "conversion_rate"),
    ):
        data = ok(
            api.client.get(
                "/v1/analytics/dashboard/cohorts",
                params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "metric": metric},
            )
        )["data"]
        flat = [
            (c["cohortWeek"], c["cohortSize"], w["weekOffset"], w["leads"], w["rate"])
            for c in data["cohorts"]
            for w in c["weeks"]
        ]
        assert flat == [
            (r["cohort_week"].isoformat(), r["cohort_size"], r["week_offset"], r[count], r[rate]) for r in rows
        ]
        assert len(data["cohorts"]) == 6


def _reference_funnel(api, steps, first, last, window_days=7):
    events = [e for e in classified([api.input], api.input) if e["tenantId"] == api.a]
    entry = (
        datetime.combine(first, datetime.min.time()),
        datetime.combine(last + timedelta(days=1), datetime.min.time()),
    )
    return funnel(events, steps, window_days * 86400, entry=entry), events


def _check_steps(steps, attempts, n):
    for k in range(1, n + 1):
        reached = [t for t in attempts if len(t) >= k]
        assert steps[k - 1]["entities"] == len(reached), k
        if k > 1 and reached:
            gaps = sorted((t[k - 1] - t[k - 2]).total_seconds() for t in reached)
            assert steps[k - 1]["avgSecondsFromPrevious"] == pytest.approx(sum(gaps) / len(gaps), rel=1e-9)
            middle = len(gaps) // 2
            median = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
            assert steps[k - 1]["medianSecondsFromPrevious"] == pytest.approx(median, rel=1e-9, abs=1e-6)
            assert steps[k - 1]["conversionFromPrevious"] == pytest.approx(
                len(reached) / len([t for t in attempts if len(t) >= k - 1])
            )


def test_custom_funnel_equals_plain_python(api):
    steps = ["email_sent", "email_open", "link_click", "email_reply"]
    first, last = date(2026, 2, 1), date(2026, 3, 10)
    best, events = _reference_funnel(api, steps, first, last)
    data = ok(
        post_json(
            api.client,
            "/v1/analytics/dashboard/funnel",
            {
                "steps": [{"eventType": s} for s in steps],
                "windowSeconds": 7 * 86400,
                "from": first.isoformat(),
                "to": last.isoformat(),
            },
        )
    )["data"]
    attempts = [b["times"] for b in best.values()]
    assert len(attempts) > 300
    _check_steps(data["steps"], attempts, 4)
    # The same funnel by workflow through GET: each group equals the plain-Python funnel of its leads.
    messages = read_messages(api.input)
    sends = {(e["tenantId"], e["messageId"]): e for e in events if e["eventType"] == "email_sent"}

    def workflow(attempt):
        key = (api.a, attempt["message"])
        return messages.get(key, {}).get("workflow_id") or sends.get(key, {}).get("workflowId")

    groups = defaultdict(list)
    for attempt in best.values():
        groups[workflow(attempt)].append(attempt["times"])
    data = ok(
        api.client.get(
            "/v1/analytics/dashboard/funnel",
            params={
                "steps": ",".join(steps),
                "windowDays": 7,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "breakdown": "workflow",
            },
        )
    )["data"]
    assert {g["workflow"] for g in data["groups"]} == set(groups)
    for group in data["groups"]:
        _check_steps(group["steps"], groups[group["workflow"]], 4)


def test_web_funnel_with_a_form_filter(api):
    form = query(
        api.settings,
        "SELECT form_id FROM marts.fct_events WHERE tenant_id = ? AND form_id IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        [api.a],
    )[0][0]
    first, last = date(2026, 1, 5), date(2026, 3, 20)
    events = [
        e
        for e in classified([api.input], api.input)
        if e["tenantId"] == api.a and (e["eventType"] != "form_submission" or e.get("formId") == form)
    ]
    entry = (
        datetime.combine(first, datetime.min.time()),
        datetime.combine(last + timedelta(days=1), datetime.min.time()),
    )
    best = funnel(events, ["page_visit", "form_submission"], 3 * 86400, entry=entry)
    data = ok(
        post_json(
            api.client,
            "/v1/analytics/dashboard/funnel",
            {
                "steps": [{"eventType": "page_visit"}, {"eventType": "form_submission", "formId": form}],
                "windowSeconds": 3 * 86400,
                "from": first.isoformat(),
                "to": last.isoformat(),
            },
        )
    )["data"]
    _check_steps(data["steps"], [b["times"] for b in best.values()], 2)


# ---- leads, forms, pages, predictive ---------------------------------------------------------------
def _busiest_leads(api, tenant, n=3):
    return [
        r[0]
        for r in query(
            api.settings,
            "SELECT lead_id FROM marts.fct_events WHERE tenant_id = ? AND lead_id "
            "IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?",
            [tenant, n],
        )
    ]


def test_lead_engagement_and_timeline_equal_the_marts(api):
    for lead in _busiest_leads(api, api.a):
        [mart] = query_dicts(
            api.settings, "SELECT * FROM marts.mart_lead_engagement WHERE tenant_id = ? AND lead_id = ?", [api.a, lead]
        )
        data = ok(api.client.get(f"/v1/analytics/leads/{lead}/engagement"))["data"]
        for column in ("sends", "opens", "clicks", "replies", "bounces", "form_submissions", "page_visits"):
            assert data[camel(column)] == mart[column]
        assert data["engagementScore"] == pytest.approx(mart["engagement_score"])
        assert data["engagementTier"] == mart["engagement_tier"]
        assert data["lastActivityAt"].startswith(mart["last_activity_at"].strftime("%Y-%m-%dT%H:%M:%S"))
        expected = [
            r[0]
            for r in query(
                api.settings,
                "SELECT event_id FROM marts.fct_events WHERE tenant_id = ? AND "
                "lead_id = ? ORDER BY occurred_at DESC, event_id DESC",
                [api.a, lead],
            )
        ]
        pages, page = [], 1
        while True:
            body = ok(api.client.get(f"/v1/analytics/leads/{lead}/timeline", params={"limit": 7, "page": page}))
            pages += [e["eventId"] for e in body["data"]]
            assert body["pagination"]["total"] == len(expected)
            if not body["pagination"]["hasNext"]:
                break
            page += 1
        assert pages == expected and len(expected) > 7
        opens = ok(
            api.client.get(f"/v1/analytics/leads/{lead}/timeline", params={"eventType": "email_open", "limit": 500})
        )
        assert {e["eventType"] for e in opens["data"]} <= {"email_open"}


def test_form_submissions_equal_the_marts(api):
    day = query(
        api.settings,
        "SELECT submission_date FROM marts.mart_form_submissions_daily WHERE tenant_id = ? "
        "GROUP BY 1 ORDER BY sum(submissions) DESC LIMIT 1",
        [api.a],
    )[0][0]
    mart = {
        r["form_id"]: r
        for r in query_dicts(
            api.settings,
            "SELECT * FROM marts.mart_form_submissions_daily WHERE tenant_id = ? AND submission_date = ?",
            [api.a, day],
        )
    }
    one_day = ok(
        api.client.get(
            "/v1/analytics/form-submissions/summary", params={"from": day.isoformat(), "to": day.isoformat()}
        )
    )["data"]["forms"]
    assert {f["formId"]: (f["submissions"], f["uniqueLeads"], f["leadsConvertedAfterwards"]) for f in one_day} == {
        k: (r["submissions"], r["unique_leads"], r["leads_converted_afterwards"]) for k, r in mart.items()
    }
    # Over a range, in plain Python from the input: distinct leads, converted at or after their first submission.
    leads = read_leads(api.input)
    submissions = [
        e
        for e in classified([api.input], api.input)
        if e["tenantId"] == api.a and e["eventType"] == "form_submission" and FIRST <= e["ts"].date() <= LAST
    ]
    firsts: dict = {}
    for e in submissions:
        if e.get("leadId"):
            key = (e.get("formId"), e["leadId"])
            firsts[key] = min(e["ts"], firsts.get(key, e["ts"]))
    expected = {}
    for form in {e.get("formId") for e in submissions}:
        converted = sum(
            1
            for (f, lead), at in firsts.items()
            if f == form
            and (leads.get((api.a, lead), {}).get("converted_at") or "")
            and datetime.fromisoformat(leads[(api.a, lead)]["converted_at"].replace("Z", "")).replace(tzinfo=None) >= at
        )
        expected[form] = (
            sum(1 for e in submissions if e.get("formId") == form),
            len({lead for (f, lead) in firsts if f == form}),
            converted,
        )
    ranged = ok(
        api.client.get(
            "/v1/analytics/form-submissions/summary", params={"from": FIRST.isoformat(), "to": LAST.isoformat()}
        )
    )["data"]["forms"]
    assert {
        f["formId"]: (f["submissions"], f["uniqueLeads"], f["leadsConvertedAfterwards"]) for f in ranged
    } == expected
    form = next(iter(mart))
    listed = ok(
        api.client.get(
            "/v1/analytics/form-submissions",
            params={"from": day.isoformat(), "to": day.isoformat(), "formId": form, "limit": 500},
        )
    )
    assert listed["pagination"]["total"] == mart[form]["submissions"] == len(listed["data"])
    assert {e["formId"] for e in listed["data"]} == {form}


def test_page_visits_and_top_pages_equal_the_marts(api):
    mart = query(
        api.settings,
        "SELECT page_url, sum(visits) FROM marts.mart_page_visits_daily WHERE tenant_id = ? AND "
        "visit_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST",
        [api.a, FIRST, LAST],
    )
    events = [
        e
        for e in classified([api.input], api.input)
        if e["tenantId"] == api.a and e["eventType"] == "page_visit" and FIRST <= e["ts"].date() <= LAST
    ]
    data = ok(
        api.client.get(
            "/v1/analytics/page-visits/top-pages",
            params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "limit": 5},
        )
    )["data"]
    assert [(p["pageUrl"], p["visits"]) for p in data] == [(u, v) for u, v in mart[:5]]
    for page in data:
        assert page["uniqueLeads"] == len(
            {e["leadId"] for e in events if e.get("url") == page["pageUrl"] and e.get("leadId")}
        )
    listed = ok(
        api.client.get(
            "/v1/analytics/page-visits",
            params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "url": mart[0][0], "limit": 2},
        )
    )
    assert listed["pagination"]["total"] == mart[0][1] and len(listed["data"]) == 2
    everything = ok(
        api.client.get("/v1/analytics/page-visits", params={"from": FIRST.isoformat(), "to": LAST.isoformat()})
    )
    assert everything["pagination"]["total"] == len(events)


def test_lead_scores_equal_the_mart(api):
    rows = query_dicts(
        api.settings,
        "SELECT * FROM marts.mart_lead_scores WHERE tenant_id = ? ORDER BY score DESC, probability DESC, lead_id",
        [api.a],
    )
    body = ok(api.client.get("/v1/analytics/predictive/lead-scores", params={"limit": 20}))
    assert body["pagination"]["total"] == len(rows)
    assert [(r["leadId"], r["score"], r["tier"]) for r in body["data"]] == [
        (r["lead_id"], r["score"], r["tier"]) for r in rows[:20]
    ]
    tier_a = ok(api.client.get("/v1/analytics/predictive/lead-scores", params={"tier": "A", "minScore": 1}))
    assert tier_a["pagination"]["total"] == sum(1 for r in rows if r["tier"] == "A" and r["score"] >= 1)
    one = ok(api.client.get(f"/v1/analytics/predictive/lead-scores/{rows[0]['lead_id']}"))["data"]
    assert one["score"] == rows[0]["score"] and one["topFactors"] == json.loads(rows[0]["top_factors"])
    # No model was trained for this warehouse (tenants are scored by the baseline): the card is a clear 404.
    card = api.client.get("/v1/analytics/predictive/model")
    assert card.status_code == 404 and card.json()["message"] == "No model is in production yet"


# ---- real time -------------------------------------------------------------------------------------
def test_an_ingested_event_shows_in_todays_kpis_at_once(api):
    today = datetime.now(UTC).date().isoformat()

    def today_counts():
        return ok(api.client.get("/v1/analytics/dashboard/kpis", params={"from": today, "to": today}))["data"]["today"]

    before = today_counts()
    event = {
        "eventId": f"rt-{time.time_ns()}",
        "eventType": "page_visit",
        "leadId": "ld_rt",
        "url": "https://a.example/",
    }
    ok(post_json(api.client, "/v1/analytics/events", event), 201)
    after = today_counts()  # the sealer is slowed to an hour here: the event is read from the API's log
    assert after["events"].get("page_visit", 0) == before["events"].get("page_visit", 0) + 1
    assert after["notYetPublished"] == before["notYetPublished"] + 1
    ok(post_json(api.client, "/v1/analytics/events", event), 201)  # a retry is not counted twice
    assert today_counts() == after
    assert (
        ok(api.other.get("/v1/analytics/dashboard/kpis", params={"from": today, "to": today}))["data"]["today"][
            "notYetPublished"
        ]
        == 0
    )  # another tenant does not see it


# ---- reports, schedules, deliveries, exports --------------------------------------------------------
REPORT = {
    "name": "Weekly sends",
    "metrics": ["sent", "reply_rate"],
    "dimensions": ["date_week"],
    "dateRange": {"start": "2026-02-02", "end": "2026-03-02"},
}


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


def _finished(client, export_id):
    for _ in range(200):
        data = ok(client.get(f"/v1/analytics/exports/{export_id}"))["data"]
        if data["status"] != "running":
            return data
        time.sleep(0.05)
    raise AssertionError("export did not finish")


def test_exports(api):
    started = post_json(
        api.client,
        "/v1/analytics/exports",
        {"dataset": "mart_kpis_daily", "format": "csv", "from": "2026-03-01", "to": "2026-03-07"},
    )
    body = ok(started, 202)
    assert started.headers["location"] == f"/v1/analytics/exports/{body['data']['id']}"
    data = _finished(api.client, body["data"]["id"])
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


# ---- isolation, scopes, bad input --------------------------------------------------------------------
def _error(response):
    body = response.json()
    return response.status_code, body["message"], body["error"]


def test_another_tenants_ids_are_404_like_missing_ones(api):
    lead = next(
        lead
        for lead in _busiest_leads(api, api.a, 20)
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
    _finished(api.client, export)
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
