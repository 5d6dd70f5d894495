"""The activity, web, form, KPI and lead-engagement marts equal a plain-Python computation
over the same generated input files."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from tests.conftest import query, query_dicts
from tests.reference_metrics import (
    _ts,
    activity_daily,
    classified,
    email_performance,
    form_submissions_daily,
    lead_engagement,
    page_visits_daily,
    read_leads,
)


@pytest.fixture(scope="module")
def events(generated_build):
    _, input_dir = generated_build
    return classified([input_dir], input_dir)


def test_activity_daily(generated_build, events):
    settings, _ = generated_build
    rows = query(
        settings,
        "SELECT tenant_id, event_date, event_type, events, human_events, bot_events FROM marts.mart_activity_daily",
    )
    assert {r[:3]: r[3:] for r in rows} == activity_daily(events)


def test_page_visits_and_forms(generated_build, events):
    settings, input_dir = generated_build
    visits = query(
        settings, "SELECT tenant_id, page_url, visit_date, visits, unique_leads FROM marts.mart_page_visits_daily"
    )
    assert {r[:3]: r[3:] for r in visits} == page_visits_daily(events)
    forms = query(
        settings,
        "SELECT tenant_id, form_id, submission_date, submissions, unique_leads, "
        "leads_converted_afterwards FROM marts.mart_form_submissions_daily",
    )
    expected = form_submissions_daily(events, input_dir)
    assert {r[:3]: r[3:] for r in forms} == expected
    assert sum(v[2] for v in expected.values()) > 0  # conversions after a form do happen in the data


def test_kpis_daily_counts_rates_and_leads(generated_build, events):
    settings, input_dir = generated_build
    perf = email_performance([input_dir], input_dir)
    day: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (tenant, send_date, *_), counts in perf.items():
        for name, value in counts.items():
            if not name.startswith("leads_"):
                day[(tenant, send_date)][name] += value
    conversions: dict[tuple, int] = defaultdict(int)
    for (tenant, _), lead in read_leads(input_dir).items():
        if lead["converted_at"]:
            conversions[(tenant, _ts(lead["converted_at"]).date())] += 1
    rows = {(r["tenant_id"], r["kpi_date"]): r for r in query_dicts(settings, "SELECT * FROM marts.mart_kpis_daily")}
    assert set(rows) == set(day) | set(conversions)
    for key, row in rows.items():
        counts = day.get(key, {})
        for name in ("sent", "bounced", "delivered", "unique_opens", "unique_clicks", "replied", "positive_replied"):
            assert row[name] == counts.get(name, 0), (key, name)
        delivered, sent = counts.get("delivered", 0), counts.get("sent", 0)
        expected_open = counts.get("unique_opens", 0) / delivered if delivered else None
        assert (row["open_rate"] is None and expected_open is None) or math.isclose(row["open_rate"], expected_open)
        assert row["bounce_rate"] is None if not sent else math.isclose(row["bounce_rate"], counts["bounced"] / sent)
        assert row["leads_converted"] == conversions.get(key, 0)
        assert row["leads_replied"] <= row["leads_engaged"] <= row["leads_contacted"]


def test_lead_engagement_scores_and_tiers(generated_build, events):
    settings, input_dir = generated_build
    rows = query(
        settings,
        "SELECT tenant_id, lead_id, engagement_score, engagement_tier, scored_as_of FROM marts.mart_lead_engagement",
    )
    as_of = rows[0][4]
    expected = lead_engagement(events, input_dir, as_of)
    assert len(rows) == len(expected)
    for tenant, lead, score, tier, _ in rows:
        want_score, want_tier = expected[(tenant, lead)]
        assert math.isclose(score, want_score, rel_tol=1e-9, abs_tol=1e-9), (tenant, lead)
        assert tier == want_tier, (tenant, lead)
    tiers = {t for *_, t, _ in rows}
    assert tiers == {"hot", "warm", "cold"}


def test_cohort_retention_matrix(generated_build, events):
    from tests.reference_metrics import cohort_retention

    settings, input_dir = generated_build
    as_of = query(settings, "SELECT max(scored_as_of) FROM marts.mart_lead_engagement")[0][0]
    rows = query(
        settings,
        "SELECT tenant_id, cohort_week, week_offset, cohort_size, active_leads, converted_leads "
        "FROM marts.mart_cohort_retention",
    )
    expected = cohort_retention(events, input_dir, as_of)
    assert {r[:3]: r[3:] for r in rows} == expected
    assert len(expected) > 100 and any(v[1] for v in expected.values())
