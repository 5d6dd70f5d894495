"""The read API's leads, form submissions, page visits, lead scores and real-time KPIs against the marts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.api_server import post_json
from tests.conftest import query, query_dicts
from tests.read_api import (
    FIRST,
    LAST,
    busiest_leads,
    camel,
    ok,
)
from tests.reference_metrics import classified, read_leads


# ---- leads, forms, pages, predictive ---------------------------------------------------------------
def test_lead_engagement_and_timeline_equal_the_marts(api):
    for lead in busiest_leads(api, api.a):
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
