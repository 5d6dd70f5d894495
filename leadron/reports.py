"""Custom reports: a definition (YAML) -> one SQL query over the published marts -> rows.

Only catalogued metrics and dimensions exist; every value (tenant, dates, filter values, limit) is a
bound parameter; the tenant filter is always applied; anything else is rejected with a message that
names the field. Definitions live in $LEADRON_REPORTS_DIR (default ./reports), one YAML file each.

Sources: email metrics come from mart_email_performance_daily (dimensions: date, workflow, step, rep),
or from mart_team_performance when the report is by team (weekly grain: date_week / date_month only);
activity metrics from mart_activity_daily (date, event_type); cohort metrics from mart_cohort_retention
(cohort_week, week_offset; its date is the cohort week). Rates are ratios of summed counts
(METRICS.md), NULL when the denominator is 0. Dates are the marts' UTC days; a relative range ("last
7 days") is computed in the report's timezone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import duckdb
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from leadron.mailer import header_value
from leadron.metric_catalogue import (
    DIMENSION_NAMES,
    FAMILIES,
    GRAINS,
    LABELS,
    METRIC_NAMES,
    RATIOS,
    SOURCES,
    Label,
)
from leadron.zones import TimeZoneName

Name = Annotated[str, Field(min_length=1, max_length=64)]


class ReportError(ValueError):
    """A definition that cannot be run; the message starts with the field."""


class DateRange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    start: date | None = None
    end: date | None = None  # exclusive
    last_days: int | None = Field(default=None, ge=1, le=3660)

    @model_validator(mode="after")
    def _one_kind(self) -> DateRange:
        if (self.last_days is None) == (self.start is None or self.end is None):
            raise ValueError("give either start and end, or last_days")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SortKey(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    field: Name
    descending: bool = False


class Chart(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    type: Literal["line", "bar", "funnel", "cohort_heatmap"]
    x: Name | None = None
    y: list[Name] = Field(default_factory=list, max_length=6)


class ReportDefinition(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    tenant_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    metrics: list[Name] = Field(min_length=1, max_length=20)
    dimensions: list[Name] = Field(default_factory=list, max_length=4)
    filters: dict[Name, list[Annotated[str, Field(max_length=256)]]] = Field(default_factory=dict)
    date_range: DateRange
    timezone: TimeZoneName = "UTC"
    sort: list[SortKey] = Field(default_factory=list, max_length=6)
    limit: int = Field(default=1000, ge=1, le=100_000)
    chart: Chart | None = None
    schedules: list[dict] = Field(default_factory=list)  # validated by the scheduler

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # The name becomes the e-mail's Subject: refused here, at creation, not only when a send fails.
        return header_value("name", value)


@dataclass(frozen=True)
class ReportQuery:
    sql: str
    params: list
    columns: list[str]
    source: str
    start: date
    end: date


def _fail(field: str, reason: str) -> ReportError:
    return ReportError(f"{field}: {reason}")


def resolve_range(definition: ReportDefinition, now: datetime) -> tuple[date, date]:
    """The half-open [start, end) of days; `last_days` counts whole days before today in the report's zone."""
    rng = definition.date_range
    if rng.last_days is not None:
        today = now.astimezone(ZoneInfo(definition.timezone)).date()
        return today - timedelta(days=rng.last_days), today
    return rng.start, rng.end


def choose_source(definition: ReportDefinition) -> str:
    unknown = [m for m in definition.metrics if m not in METRIC_NAMES]
    if unknown:
        raise _fail("metrics", f"unknown metric {unknown[0]!r}; catalogue: {', '.join(METRIC_NAMES)}")
    unknown = [d for d in [*definition.dimensions, *definition.filters] if d not in DIMENSION_NAMES]
    if unknown:
        field = "dimensions" if unknown[0] in definition.dimensions else "filters"
        raise _fail(field, f"unknown dimension {unknown[0]!r}; catalogue: {', '.join(DIMENSION_NAMES)}")
    wanted = set(definition.dimensions) | set(definition.filters)
    if "lead_source" in wanted:
        raise _fail(
            "dimensions",
            "lead_source is not available for these metrics (the email and activity marts have no lead source)",
        )
    families = [f for f, metrics in FAMILIES.items() if set(definition.metrics) & set(metrics)]
    if len(families) > 1:
        raise _fail("metrics", f"{' and '.join(families)} metrics cannot be mixed in one report")
    name = families[0]
    if name == "email" and "team" in wanted:
        name = "team"
    source = SOURCES[name]
    for metric in definition.metrics:
        if metric not in source.metrics:
            raise _fail("metrics", f"{metric} is not available by team")
    for dimension in wanted - set(GRAINS):
        if dimension not in source.dimensions:
            raise _fail("dimensions", f"{dimension} is not available for {name} metrics")
    if name == "team" and "date_day" in definition.dimensions:
        raise _fail("dimensions", "date_day is not available by team (weekly data); use date_week or date_month")
    if len(set(definition.dimensions) & set(GRAINS)) > 1:
        raise _fail("dimensions", "at most one of date_day, date_week, date_month")
    return name


def _metric_sql(metric: str) -> str:
    if metric in RATIOS:
        numerator, denominator = RATIOS[metric]
        return (
            f"CASE WHEN sum({denominator}) = 0 THEN NULL ELSE CAST(sum({numerator}) AS DOUBLE) / sum({denominator}) END"
        )
    return f"sum({metric})"


def build_query(definition: ReportDefinition, now: datetime) -> ReportQuery:
    """The definition's SQL over the published copy; names only from the catalogue, values bound."""
    name = choose_source(definition)
    source = SOURCES[name]
    start, end = resolve_range(definition, now)
    select, group = [], []
    for dimension in definition.dimensions:
        if dimension in GRAINS:
            expr = f"CAST(date_trunc('{GRAINS[dimension]}', {source.date_column}) AS DATE)"
        else:
            expr = source.dimensions[dimension]
        select.append(f"{expr} AS {dimension}")
        group.append(str(len(select)))
    select += [f"{_metric_sql(m)} AS {m}" for m in definition.metrics]
    where = ["tenant_id = ?", f"{source.date_column} >= ?", f"{source.date_column} < ?"]
    params: list = [definition.tenant_id, start, end]
    for dimension, values in definition.filters.items():
        if dimension in GRAINS:
            raise _fail("filters", f"{dimension} cannot be filtered; use date_range")
        where.append(f"CAST({source.dimensions[dimension]} AS VARCHAR) IN (SELECT unnest(?))")
        params.append([str(v) for v in values])
    columns = [*definition.dimensions, *definition.metrics]
    order = []
    for key in definition.sort:
        if key.field not in columns:
            raise _fail("sort", f"{key.field!r} is not a dimension or metric of this report")
        order.append(f"{key.field} {'DESC' if key.descending else 'ASC'} NULLS LAST")
    order += [d for d in definition.dimensions if d not in {k.field for k in definition.sort}]
    sql = f"SELECT {', '.join(select)} FROM {source.table} WHERE {' AND '.join(where)}"
    if group:
        sql += f" GROUP BY {', '.join(group)}"
    sql += " HAVING count(*) > 0"  # no data, no row (a total over nothing is not a row of NULLs)
    if order:
        sql += f" ORDER BY {', '.join(order)}"
    sql += " LIMIT ?"
    params.append(definition.limit)
    if definition.chart:
        for field in [definition.chart.x, *definition.chart.y]:
            if field is not None and field not in columns:
                raise _fail("chart", f"{field!r} is not a dimension or metric of this report")
    return ReportQuery(sql, params, columns, name, start, end)


def run_report(con: duckdb.DuckDBPyConnection, definition: ReportDefinition, now: datetime) -> list[dict]:
    query = build_query(definition, now)
    return [dict(zip(query.columns, row)) for row in con.execute(query.sql, query.params).fetchall()]


HEADLINES = 4  # metrics shown as tiles at the top of a report e-mail


@dataclass(frozen=True)
class Headline:
    """One metric over the report's whole period and over the period of the same length just before it.

    `change`: for rates, the difference in points of a fraction (0.021 = +2.1 pts); for counts, the relative
    change (0.12 = +12%), None when the previous period had none. `good`: whether the change goes the way
    the metric should (None: no change, no previous value, or a metric with no good direction)."""

    metric: str
    value: float | int | None
    previous: float | int | None
    change: float | None
    good: bool | None

    @property
    def label(self) -> Label:
        return LABELS[self.metric]


def run_headlines(con: duckdb.DuckDBPyConnection, definition: ReportDefinition, now: datetime) -> list[Headline]:
    """The first HEADLINES metrics as totals, by the same query builder (no dimensions, so rates are ratios of
    the period's summed counts), for the report's period and the previous one of the same length."""
    totals = definition.model_copy(
        update={"dimensions": [], "sort": [], "chart": None, "limit": 1, "metrics": definition.metrics[:HEADLINES]}
    )
    current = build_query(totals, now)
    start, end = current.start, current.end
    before = totals.model_copy(update={"date_range": DateRange(start=start - (end - start), end=start)})
    previous = build_query(before, now)
    values = [con.execute(q.sql, q.params).fetchone() or (None,) * len(q.columns) for q in (current, previous)]
    return [
        _headline(metric, now_value, then_value)
        for metric, now_value, then_value in zip(totals.metrics, values[0], values[1])
    ]


def _headline(metric: str, value, previous) -> Headline:
    change = None
    if value is not None and previous is not None:
        if LABELS[metric].unit == "%":
            change = float(value) - float(previous)
        elif previous:
            change = (float(value) - float(previous)) / float(previous)
    up_is_good = LABELS[metric].up_is_good
    good = None if change is None or change == 0 or up_is_good is None else (change > 0) == up_is_good
    return Headline(metric, value, previous, change, good)


def load_definition(path: Path) -> ReportDefinition:
    """One YAML file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text())
        return ReportDefinition.model_validate(data)
    except yaml.YAMLError as error:
        raise ReportError(f"{path.name}: not valid YAML ({error.__class__.__name__})") from None
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "definition"
        raise ReportError(f"{path.name}: {field}: {first['msg']}") from None


def load_definitions(folder: Path) -> list[ReportDefinition]:
    return [load_definition(p) for p in sorted(folder.glob("*.y*ml"))] if folder.exists() else []
