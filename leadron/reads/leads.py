"""Lead-level reads over the published copy: engagement, timeline, form submissions, page visits and
lead scores. Every query is scoped by the key's tenant and binds every value."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb

from leadron.reads.shaping import shape

EVENT_COLUMNS = (
    "event_id, event_type, occurred_at, lead_id, message_id, workflow_execution_id, workflow_id, "
    "step_number, user_id, team_id, url, form_id, bounce_type, sentiment, is_bot, bot_reason"
)
SCORE_COLUMNS = (
    "probability, score, tier, top_factors, engagement_score, scoring_method, model_version, scored_at, snapshot_date"
)


def _dicts(cur: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict[str, Any]]:
    result = cur.execute(sql, params)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def has_table(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0]
    )


def _factors(raw: str | None) -> list[dict[str, Any]]:
    return json.loads(raw) if raw else []


def engagement(cur: duckdb.DuckDBPyConnection, tenant: str, lead: str) -> dict[str, Any] | None:
    rows = _dicts(
        cur,
        "SELECT * EXCLUDE (tenant_id) FROM mart_lead_engagement WHERE tenant_id = ? AND lead_id = ?",
        [tenant, lead],
    )
    if not rows:
        return None
    data = shape(rows[0])
    score = lead_score(cur, tenant, lead)
    data["leadScore"] = {k: v for k, v in score.items() if k != "leadId"} if score else None
    return data


def lead_exists(cur: duckdb.DuckDBPyConnection, tenant: str, lead: str) -> bool:
    return bool(
        cur.execute(
            "SELECT count(*) FROM mart_lead_engagement WHERE tenant_id = ? AND lead_id = ?", [tenant, lead]
        ).fetchall()[0][0]
    )


def _page(
    cur: duckdb.DuckDBPyConnection,
    where: list[str],
    params: list,
    offset: int,
    limit: int,
    columns: str = EVENT_COLUMNS,
) -> tuple[list[dict], int]:
    """A page of events (newest first) matching `where`, and how many match."""
    clause = " AND ".join(["tenant_id = ?", *where])
    total = cur.execute(f"SELECT count(*) FROM fct_events WHERE {clause}", params).fetchall()[0][0]
    rows = _dicts(
        cur,
        f"SELECT {columns} FROM fct_events WHERE {clause} ORDER BY occurred_at DESC, event_id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [shape(r) for r in rows], int(total)


def timeline(
    cur: duckdb.DuckDBPyConnection, tenant: str, lead: str, event_type: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    where, params = ["lead_id = ?"], [tenant, lead]
    if event_type:
        where.append("event_type = ?")
        params.append(event_type)
    return _page(cur, where, params, offset, limit)


def _event_filters(
    kind: str, start: date, end: date, lead: str | None, extra: tuple[str, str | None]
) -> tuple[list[str], list]:
    where = ["event_type = ?", "event_date BETWEEN ? AND ?"]
    params: list = [kind, start, end]
    if lead:
        where.append("lead_id = ?")
        params.append(lead)
    column, wanted = extra
    if wanted:
        where.append(f"{column} = ?")  # column: this module's literal
        params.append(wanted)
    return where, params


def form_submissions(
    cur, tenant: str, start: date, end: date, form: str | None, lead: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    where, params = _event_filters("form_submission", start, end, lead, ("form_id", form))
    return _page(cur, where, [tenant, *params], offset, limit, "event_id, form_id, lead_id, url, occurred_at")


def form_summary(cur, tenant: str, start: date, end: date, form: str | None) -> list[dict]:
    """Per form over the range: submissions, distinct leads, and leads converted at or after their first
    submission in the range (METRICS.md; a one-day range equals mart_form_submissions_daily's row)."""
    params: list = [tenant, start, end]
    form_filter = ""
    if form:
        form_filter = "AND form_id = ?"
        params.append(form)
    rows = _dicts(
        cur,
        f"""
        WITH submissions AS (
            SELECT form_id, lead_id, occurred_at FROM fct_events
            WHERE tenant_id = ? AND event_type = 'form_submission' AND event_date BETWEEN ? AND ? {form_filter}),
        firsts AS (
            SELECT form_id, lead_id, min(occurred_at) AS first_at FROM submissions
            WHERE lead_id IS NOT NULL GROUP BY form_id, lead_id),
        converted AS (
            SELECT f.form_id, count(*) AS leads_converted_afterwards FROM firsts AS f
            JOIN mart_lead_engagement AS l ON l.tenant_id = ? AND l.lead_id = f.lead_id
            WHERE l.converted_at >= f.first_at GROUP BY f.form_id)
        SELECT s.form_id, count(*) AS submissions, count(DISTINCT s.lead_id) AS unique_leads,
               coalesce(any_value(c.leads_converted_afterwards), 0) AS leads_converted_afterwards
        FROM submissions AS s LEFT JOIN converted AS c ON c.form_id IS NOT DISTINCT FROM s.form_id
        GROUP BY s.form_id ORDER BY submissions DESC, s.form_id NULLS LAST""",
        [*params, tenant],
    )
    return [shape(r) for r in rows]


def page_visits(
    cur, tenant: str, start: date, end: date, url: str | None, lead: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    where, params = _event_filters("page_visit", start, end, lead, ("url", url))
    return _page(cur, where, [tenant, *params], offset, limit, "event_id, url, lead_id, occurred_at")


def top_pages(cur, tenant: str, start: date, end: date, limit: int) -> list[dict]:
    """Pages by visits over the range (mart_page_visits_daily), with their distinct leads over the range."""
    rows = _dicts(
        cur,
        """
        WITH visits AS (
            SELECT page_url, sum(visits) AS visits FROM mart_page_visits_daily
            WHERE tenant_id = ? AND visit_date BETWEEN ? AND ? GROUP BY page_url),
        leads AS (
            SELECT url AS page_url, count(DISTINCT lead_id) AS unique_leads FROM fct_events
            WHERE tenant_id = ? AND event_type = 'page_visit' AND event_date BETWEEN ? AND ? GROUP BY url)
        SELECT v.page_url, v.visits, coalesce(l.unique_leads, 0) AS unique_leads
        FROM visits AS v LEFT JOIN leads AS l ON l.page_url IS NOT DISTINCT FROM v.page_url
        ORDER BY v.visits DESC, v.page_url NULLS LAST LIMIT ?""",
        [tenant, start, end, tenant, start, end, limit],
    )
    return [shape(r) for r in rows]


def lead_scores(
    cur, tenant: str, tier: str | None, min_score: int | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    if not has_table(cur, "mart_lead_scores"):
        return [], 0
    where, params = ["tenant_id = ?"], [tenant]
    if tier:
        where.append("tier = ?")
        params.append(tier)
    if min_score is not None:
        where.append("score >= ?")
        params.append(min_score)
    clause = " AND ".join(where)
    total = cur.execute(f"SELECT count(*) FROM mart_lead_scores WHERE {clause}", params).fetchall()[0][0]
    rows = _dicts(
        cur,
        f"SELECT lead_id, score, probability, tier, scoring_method, model_version, scored_at "
        f"FROM mart_lead_scores WHERE {clause} ORDER BY score DESC, probability DESC, lead_id "
        "LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [shape(r) for r in rows], int(total)


def lead_score(cur, tenant: str, lead: str) -> dict[str, Any] | None:
    if not has_table(cur, "mart_lead_scores"):
        return None
    rows = _dicts(
        cur,
        f"SELECT lead_id, {SCORE_COLUMNS} FROM mart_lead_scores WHERE tenant_id = ? AND lead_id = ?",
        [tenant, lead],
    )
    if not rows:
        return None
    rows[0]["top_factors"] = _factors(rows[0]["top_factors"])
    return shape(rows[0])
