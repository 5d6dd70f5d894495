"""The read API's dashboard against a real server on a warehouse built from generated data: KPIs, team
performance, cohorts and funnels against the marts or a plain-Python computation."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from tests.api_server import post_json
from tests.conftest import query, query_dicts
from tests.read_api import (
    COUNTS,
    FIRST,
    LAST,
    assert_row,
    camel,
    ok,
)
from tests.reference_metrics import classified, funnel, read_messages


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
