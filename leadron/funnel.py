"""The funnel engine for custom funnels (METRICS.md "Funnel"); the default funnel marts follow the same rule in SQL
(dbt_project/macros/funnel.sql), and tests hold both to the same events.

A funnel is an ordered list of steps (event types, optionally filtered by URL or form), a conversion
window, an entity (lead or message) and a date range for entry. Semantics:
  - an attempt starts at each step-1 event of the entity inside the range;
  - step k+1 is the earliest matching event at or after the step-k event used (strictly later when
    both steps are the same event type, so it is another event), no later than the window after the
    attempt's step-1 event (exactly the window still counts); earliest-first matching reaches furthest;
  - each entity counts once, with its attempt that reaches furthest (earliest on a tie);
  - per step: entities, conversion from step 1 and from the previous step, and the average and median
    seconds from the previous step among the entities that reached it; optional breakdown.

Reads the event grain `fct_events` (marts; its published copy for the API), which carries each event's
workflow, step, rep, team at the event's time and lead source, so a breakdown is a column of the
attempt's step-1 event. Runs on DuckDB with every value bound as a parameter; names in the SQL come only
from the whitelists below. Each entity's events are grouped once into per-step lists of times, and every
attempt is matched in its entity's lists (see _best_attempts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadron.contract import EventType

EVENTS = "marts.fct_events"  # in the warehouse; the published copy has it as plain fct_events
# breakdown -> expression over the step-1 event's columns
BREAKDOWNS = {
    "workflow": "workflow_id",
    "step": "step_number",
    "rep": "user_id",
    "team": "team_id",
    "lead_source": "lead_source",
    "cohort_week": None,
}


class FunnelStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: EventType
    url_contains: str | None = Field(default=None, min_length=1, max_length=512)
    form_id: str | None = Field(default=None, min_length=1, max_length=128)


class FunnelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: list[FunnelStep] = Field(min_length=2, max_length=8)
    window_seconds: int = Field(ge=60, le=180 * 86400)
    entity: Literal["lead", "message"] = "lead"
    tenant_id: str | None = None  # None: every tenant (the marts); the API always sets it
    start: datetime | None = None  # step-1 events at or after
    end: datetime | None = None  # ... and before (half-open)
    breakdowns: tuple[Literal["workflow", "step", "rep", "team", "lead_source", "cohort_week"], ...] = Field(
        default=(), max_length=2
    )
    human_only: bool = True

    @model_validator(mode="after")
    def _range(self) -> FunnelSpec:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def _step_filter(alias: str, index: int, params: dict[str, Any], step: FunnelStep) -> str:
    params[f"type{index}"] = step.event_type.value
    clause = f"{alias}.event_type = $type{index}"
    if step.url_contains is not None:
        params[f"url{index}"] = step.url_contains
        clause += f" AND contains({alias}.url, $url{index})"
    if step.form_id is not None:
        params[f"form{index}"] = step.form_id
        clause += f" AND {alias}.form_id = $form{index}"
    return clause


def _best_attempts(spec: FunnelSpec, events: str, params: dict[str, Any]) -> list[str]:
    """The CTEs up to `best`: one row per entity with its attempt that reaches furthest (t1..tn, depth and
    the step-1 event's breakdown columns).

    One grouping pass: each entity's events become one list of times per step (the step-1 list with the
    columns its attempts carry). Then step k of every attempt is the smallest time of list k at or after step
    k-1's (strictly after for a repeated event type), the earliest-first match, computed with a list filter
    per attempt; the window cuts the chain afterwards, which is the same since the times only grow. Measured on
    10M events: 3x faster than an ASOF join per step (which sorts every attempt once per step)."""
    params["window"] = spec.window_seconds * 1_000_000
    n = len(spec.steps)
    entity = "lead_id" if spec.entity == "lead" else "message_id"
    where = [f"e.{entity} IS NOT NULL"]
    if spec.tenant_id is not None:
        params["tenant"] = spec.tenant_id
        where.append("e.tenant_id = $tenant")
    if spec.human_only:
        where.append("NOT e.is_bot")
    # Only events that can be a step: the steps' types, and nothing before the range (every step of an
    # attempt is at or after its step-1 event) or after the range's end plus the window.
    params["types"] = sorted({s.event_type.value for s in spec.steps})
    where.append("e.event_type IN (SELECT unnest($types))")
    entry = []
    if spec.start is not None:
        params["start"] = spec.start
        entry.append("occurred_at >= $start")
        where.append("e.occurred_at >= $start")
    if spec.end is not None:
        params["end"] = spec.end
        entry.append("occurred_at < $end")
        where.append("e.occurred_at < $end + to_microseconds($window)")
    carried = _carried_columns(spec)
    filtered = [
        c
        for c, used in (
            ("url", any(s.url_contains for s in spec.steps)),
            ("form_id", any(s.form_id for s in spec.steps)),
        )
        if used
    ]
    starts = " AND ".join([_step_filter("s", 1, params, spec.steps[0]), *entry])
    # The step-1 event's breakdown columns travel with the attempt.
    first = ", ".join(["'t1': s.occurred_at", *(f"'{c}': s.{c}" for c in carried)])
    lists = [f"list({{{first}}}) FILTER (WHERE {starts}) AS s1"]
    lists += [
        f"list(s.occurred_at) FILTER (WHERE {_step_filter('s', k, params, spec.steps[k - 1])}) AS s{k}"
        for k in range(2, n + 1)
    ]
    ctes = [
        f"""ev AS (
        SELECT e.tenant_id, e.{entity} AS entity, e.event_type, e.occurred_at
            {"".join(f", e.{c}" for c in [*filtered, *carried])}
        FROM {events} AS e WHERE {" AND ".join(where)})""",
        f"""per_entity AS (
        SELECT s.tenant_id, s.entity, {", ".join(lists)}
        FROM ev AS s GROUP BY s.tenant_id, s.entity)""",
    ]
    later = [f"s{k}" for k in range(2, n + 1)]
    # An entity without a step-1 event in the range has a NULL s1: it unnests to no attempt.
    ctes.append(f"""a1 AS (
        SELECT tenant_id, entity, unnest(s1, recursive := true){"".join(f", {s}" for s in later)}
        FROM per_entity)""")
    for k in range(2, n + 1):
        after = ">" if spec.steps[k - 1].event_type == spec.steps[k - 2].event_type else ">="
        rest = "".join(f", {s}" for s in later[k - 1 :])
        ctes.append(f"""a{k} AS (
            SELECT tenant_id, entity, t1{"".join(f", {c}" for c in carried)}{"".join(f", t{j}" for j in range(2, k))},
                list_min(list_filter(s{k}, lambda x: x {after} t{k - 1})) AS t{k}{rest}
            FROM a{k - 1})""")
    within = [f"CASE WHEN t{k} <= t1 + to_microseconds($window) THEN t{k} END AS t{k}" for k in range(2, n + 1)]
    depth = " + ".join(["1", *(f"(t{k} IS NOT NULL)::INT" for k in range(2, n + 1))])
    fields = ["t1", *carried, *(f"t{k}" for k in range(2, n + 1)), "depth"]
    ctes.append(f"""attempts AS (
        SELECT tenant_id, entity, t1{"".join(f", {c}" for c in carried)}, {", ".join(within)} FROM a{n})""")
    ctes.append(f"""best AS (
        SELECT tenant_id, entity, unnest(b)
        FROM (
            SELECT tenant_id, entity,
                arg_max({{{", ".join(f"'{f}': {f}" for f in fields)}}}, ({depth}, -epoch_us(t1))) AS b
            FROM (SELECT *, {depth} AS depth FROM attempts)
            GROUP BY tenant_id, entity))""")
    return ctes


def _carried_columns(spec: FunnelSpec) -> list[str]:
    return list(dict.fromkeys(BREAKDOWNS[kind] for kind in spec.breakdowns if BREAKDOWNS[kind]))


def _aggregate(spec: FunnelSpec, best: str) -> str:
    """Per tenant and breakdown value, every step's numbers over the best attempts in `best`."""
    n = len(spec.steps)
    exprs = [
        (
            "CAST(date_trunc('week', b.t1) AS DATE)"
            if kind == "cohort_week"
            else f"CAST(b.{BREAKDOWNS[kind]} AS VARCHAR)"
        )
        + f" AS {kind}"
        for kind in spec.breakdowns
    ]
    step_cols = []
    for k in range(1, n + 1):
        step_cols.append(f"count(*) FILTER (WHERE depth >= {k}) AS step{k}_entities")
        if k > 1:
            gap = f"date_diff('millisecond', b.t{k - 1}, b.t{k}) / 1000.0"
            step_cols.append(f"avg({gap}) FILTER (WHERE depth >= {k}) AS step{k}_avg_seconds")
            step_cols.append(f"median({gap}) FILTER (WHERE depth >= {k}) AS step{k}_median_seconds")
    keys = ["b.tenant_id", *exprs]
    positions = ", ".join(str(i) for i in range(1, len(keys) + 1))
    return f"""SELECT {", ".join(keys)}, {", ".join(step_cols)}
        FROM {best} AS b
        GROUP BY {positions} ORDER BY {positions} NULLS FIRST"""


def funnel_sql(spec: FunnelSpec, events: str = EVENTS) -> tuple[str, dict[str, Any]]:
    """The query (one row per breakdown value with every step's numbers) and its parameters; `events`
    names the event-grain relation (a constant of the caller, never user input)."""
    params: dict[str, Any] = {}
    ctes = _best_attempts(spec, events, params)
    return f"WITH {', '.join(ctes)} {_aggregate(spec, 'best')}", params


def run_funnel(con: duckdb.DuckDBPyConnection, spec: FunnelSpec, events: str = EVENTS) -> list[dict[str, Any]]:
    """One dict per tenant and breakdown values with, per step k: entities, conversion from step 1 and
    from the previous step, average and median seconds from the previous step."""
    sql, params = funnel_sql(spec, events)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values))
        steps = []
        for k in range(1, len(spec.steps) + 1):
            entities = row[f"step{k}_entities"]
            previous = row[f"step{k - 1}_entities"] if k > 1 else entities
            first = row["step1_entities"]
            steps.append(
                {
                    "step": k,
                    "event_type": spec.steps[k - 1].event_type.value,
                    "entities": entities,
                    "conversion_from_start": entities / first if first else None,
                    "conversion_from_previous": entities / previous if previous else None,
                    "avg_seconds_from_previous": row.get(f"step{k}_avg_seconds"),
                    "median_seconds_from_previous": row.get(f"step{k}_median_seconds"),
                }
            )
        out.append({"tenant_id": row["tenant_id"], **{k: row[k] for k in spec.breakdowns}, "steps": steps})
    return out
