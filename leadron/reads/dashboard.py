"""Dashboard numbers over the published copy: KPIs, funnels, cohorts, team performance.

KPIs and team performance are report queries (leadron/metric_catalogue.py: one catalogue, rates as
ratios of summed counts); funnels are the funnel engine on the published event grain. Every function
takes a DuckDB cursor on one published version and the key's tenant.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from leadron.funnel import FunnelSpec, run_funnel
from leadron.metric_catalogue import FAMILIES, RATIOS, SOURCES
from leadron.reads.shaping import shape
from leadron.reports import ReportDefinition, run_report

GROUPS = {
    "day": "date_day",
    "week": "date_week",
    "month": "date_month",
    "workflow": "workflow",
    "step": "step",
    "rep": "rep",
    "team": "team",
}
PUBLISHED_EVENTS = "fct_events"  # the event grain in the published copy


def _report(
    tenant: str,
    metrics: tuple[str, ...],
    dimensions: list[str],
    start: date,
    end: date,
    filters: dict[str, list[str]] | None = None,
) -> ReportDefinition:
    return ReportDefinition(
        id="api",
        name="api",
        tenant_id=tenant,
        metrics=list(metrics),
        dimensions=dimensions,
        filters=filters or {},
        limit=100_000,
        date_range={"start": start, "end": end + timedelta(days=1)},
    )


def _zero(metrics: tuple[str, ...]) -> dict[str, Any]:
    return {m: (None if m in RATIOS else 0) for m in metrics}


def _totals(
    cur: duckdb.DuckDBPyConnection,
    tenant: str,
    metrics: tuple[str, ...],
    start: date,
    end: date,
    filters: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    rows = run_report(cur, _report(tenant, metrics, [], start, end, filters), datetime.now(UTC))
    return rows[0] if rows else _zero(metrics)


def _change(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Relative change per metric (null when the previous value is 0 or null)."""
    return {
        k: (None if not previous.get(k) or current.get(k) is None else (current[k] - previous[k]) / previous[k])
        for k in current
    }


def kpis(
    cur: duckdb.DuckDBPyConnection, tenant: str, start: date, end: date, group: str, compare: bool
) -> dict[str, Any]:
    """Email KPIs by send day: a series grouped by `group` and the totals of the range (and of the
    period just before it, with the relative change, when `compare`). By team the series is weekly
    (mart_team_performance: weeks starting in the range); the totals are always the range's days."""
    metrics = SOURCES["team"].metrics if group == "team" else FAMILIES["email"]
    series = run_report(cur, _report(tenant, metrics, [GROUPS[group]], start, end), datetime.now(UTC))
    email = FAMILIES["email"]
    totals = _totals(cur, tenant, email, start, end)
    data: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "groupBy": group,
        "series": [shape(r) for r in series],
        "totals": shape(totals),
    }
    if compare:
        days = (end - start).days + 1
        before_start, before_end = start - timedelta(days=days), start - timedelta(days=1)
        previous = _totals(cur, tenant, email, before_start, before_end)
        data["comparison"] = {
            "from": before_start.isoformat(),
            "to": before_end.isoformat(),
            "totals": shape(previous),
            "change": shape(_change(totals, previous)),
        }
    return data


def published_ids(cur: duckdb.DuckDBPyConnection, tenant: str, day: date, ids: list[str]) -> set[str]:
    return {
        r[0]
        for r in cur.execute(
            f"SELECT event_id FROM {PUBLISHED_EVENTS} WHERE tenant_id = ? AND event_date = ? "
            "AND event_id IN (SELECT unnest(?))",
            [tenant, day, ids],
        ).fetchall()
    }


def today_activity(cur: duckdb.DuckDBPyConnection, tenant: str, day: date, unloaded: list[dict]) -> dict[str, Any]:
    """Today's events by type: the published ones plus those that arrived since (not yet published).
    The bot rule is applied when events are loaded, so these counts include bots."""
    counts = Counter(
        dict(
            cur.execute(
                f"SELECT event_type, count(*) FROM {PUBLISHED_EVENTS} "
                "WHERE tenant_id = ? AND event_date = ? GROUP BY 1",
                [tenant, day],
            ).fetchall()
        )
    )
    already = published_ids(cur, tenant, day, [e["event_id"] for e in unloaded]) if unloaded else set()
    fresh = [e for e in unloaded if e["event_id"] not in already]
    counts.update(e["event_type"] for e in fresh)
    return {
        "date": day.isoformat(),
        "events": dict(sorted(counts.items())),
        "eventsTotal": sum(counts.values()),
        "notYetPublished": len(fresh),
    }


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [shape(s) for s in steps]


def funnel(cur: duckdb.DuckDBPyConnection, spec: FunnelSpec) -> dict[str, Any]:
    rows = run_funnel(cur, spec, PUBLISHED_EVENTS)
    data: dict[str, Any] = {
        "entity": spec.entity,
        "windowSeconds": spec.window_seconds,
        "steps": [{"step": k + 1, "eventType": s.event_type.value} for k, s in enumerate(spec.steps)],
    }
    if not spec.breakdowns:
        empty = [
            {
                "step": k + 1,
                "eventType": s.event_type.value,
                "entities": 0,
                "conversionFromStart": None,
                "conversionFromPrevious": None,
                "avgSecondsFromPrevious": None,
                "medianSecondsFromPrevious": None,
            }
            for k, s in enumerate(spec.steps)
        ]
        data["steps"] = _steps(rows[0]["steps"]) if rows else empty
    else:
        data["breakdown"] = list(spec.breakdowns)
        data["groups"] = [{**{b: r[b] for b in spec.breakdowns}, "steps": _steps(r["steps"])} for r in rows]
    return data


def cohorts(cur: duckdb.DuckDBPyConnection, tenant: str, start: date, end: date, metric: str) -> list[dict]:
    """Cohorts whose week (Monday) is in [start, end], with their weeks' retention or conversion."""
    leads, rate = (
        ("active_leads", "retention_rate") if metric == "retention" else ("converted_leads", "conversion_rate")
    )
    rows = cur.execute(
        f"SELECT cohort_week, cohort_size, week_offset, {leads}, {rate} FROM mart_cohort_retention "
        "WHERE tenant_id = ? AND cohort_week BETWEEN ? AND ? ORDER BY cohort_week, week_offset",
        [tenant, start, end],
    ).fetchall()
    out: list[dict] = []
    for week, size, offset, count, value in rows:
        if not out or out[-1]["cohortWeek"] != week.isoformat():
            out.append({"cohortWeek": week.isoformat(), "cohortSize": size, "weeks": []})
        out[-1]["weeks"].append({"weekOffset": offset, "leads": count, "rate": value})
    return out


def team_performance(
    cur: duckdb.DuckDBPyConnection, tenant: str, start: date, end: date, group: str, team_id: str | None
) -> dict[str, Any]:
    """Per team or rep over the weeks starting in the range (mart_team_performance), with touches per reply."""
    metrics = SOURCES["team"].metrics
    filters = {"team": [team_id]} if team_id else None
    rows = run_report(cur, _report(tenant, metrics, [group], start, end, filters), datetime.now(UTC))
    for row in rows:
        row["touches_per_reply"] = row["sent"] / row["replied"] if row["replied"] else None
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "groupBy": group,
        "rows": [
            shape({("team_id" if k == "team" else "user_id" if k == "rep" else k): v for k, v in r.items()})
            for r in rows
        ],
    }
