"""Custom reports: the query builder against plain Python (hypothesis), hostile input, and the renderers."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import duckdb
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadron.metric_catalogue import ACTIVITY, COUNTS, DIMENSION_NAMES, METRIC_NAMES, RATES
from leadron.report_render import to_csv, to_html, to_pdf, to_xlsx
from leadron.reports import (
    ReportDefinition,
    ReportError,
    build_query,
    load_definition,
    run_report,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
TENANTS = ["acme", "globex"]
WORKFLOWS = ["wf-a", "wf-b", "=cmd()"]


@pytest.fixture(scope="module")
def mart():
    """An in-memory copy of the published marts' shape with random rows, and the rows as Python dicts."""
    rng = random.Random(4)
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE mart_email_performance_daily (tenant_id VARCHAR, send_date DATE, workflow_id VARCHAR, "
        f"step_number INTEGER, user_id VARCHAR, {', '.join(c + ' BIGINT' for c in COUNTS)})"
    )
    con.execute(
        "CREATE TABLE mart_activity_daily (tenant_id VARCHAR, event_date DATE, event_type VARCHAR, "
        "events BIGINT, human_events BIGINT, bot_events BIGINT)"
    )
    con.execute(
        f"CREATE TABLE mart_team_performance (tenant_id VARCHAR, team_id VARCHAR, user_id VARCHAR, "
        f"week_start DATE, {', '.join(c + ' BIGINT' for c in COUNTS)})"
    )
    email, activity = [], []
    for _ in range(400):
        sent = rng.randint(0, 30)
        delivered = rng.randint(0, sent)
        opens = rng.randint(0, delivered)
        replied = rng.randint(0, opens)
        row = {
            "tenant_id": rng.choice(TENANTS),
            "send_date": date(2026, 2, 1) + timedelta(days=rng.randint(0, 50)),
            "workflow_id": rng.choice(WORKFLOWS),
            "step_number": rng.randint(1, 3),
            "user_id": rng.choice(["rep1", "rep2"]),
            "sent": sent,
            "delivered": delivered,
            "bounced": sent - delivered,
            "hard_bounced": 0,
            "soft_bounced": sent - delivered,
            "opens_total": opens * 2,
            "unique_opens": opens,
            "clicks_total": 0,
            "unique_clicks": rng.randint(0, opens),
            "replied": replied,
            "positive_replied": rng.randint(0, replied),
        }
        email.append(row)
        con.execute(
            f"INSERT INTO mart_email_performance_daily VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
    for _ in range(200):
        events = rng.randint(0, 50)
        bots = rng.randint(0, events)
        row = {
            "tenant_id": rng.choice(TENANTS),
            "event_date": date(2026, 2, 1) + timedelta(days=rng.randint(0, 50)),
            "event_type": rng.choice(["email_open", "page_visit"]),
            "events": events,
            "human_events": events - bots,
            "bot_events": bots,
        }
        activity.append(row)
        con.execute("INSERT INTO mart_activity_daily VALUES (?, ?, ?, ?, ?, ?)", list(row.values()))
    return con, {"email": email, "activity": activity}


def expected(rows: list[dict], definition: ReportDefinition, date_column: str, columns: dict[str, str]) -> list[tuple]:
    """The report computed in plain Python: filter, group, sum, ratio of sums."""
    query = build_query(definition, NOW)
    groups: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        if row["tenant_id"] != definition.tenant_id or not query.start <= row[date_column] < query.end:
            continue
        if any(str(row[columns[d]]) not in values for d, values in definition.filters.items()):
            continue
        key = []
        for d in definition.dimensions:
            day = row[date_column]
            key.append(
                {
                    "date_day": day,
                    "date_week": day - timedelta(days=day.weekday()),
                    "date_month": day.replace(day=1),
                }.get(d, row.get(columns.get(d, "")))
            )
        for name in {*COUNTS, *ACTIVITY} & set(row):
            groups[tuple(key)][name] += row[name]
    out = []
    for key, sums in groups.items():
        values = []
        for m in definition.metrics:
            if m in RATES:
                num, den = RATES[m]
                values.append(None if sums[den] == 0 else round(sums[num] / sums[den], 9))
            else:
                values.append(int(sums[m]))
        out.append((*key, *values))
    return sorted(out, key=repr)


EMAIL_COLUMNS = {"workflow": "workflow_id", "step": "step_number", "rep": "user_id"}
email_definitions = st.builds(
    lambda metrics, dims, wf, last_days, tenant: ReportDefinition(
        id="r",
        name="R",
        tenant_id=tenant,
        metrics=metrics,
        dimensions=dims,
        filters={"workflow": wf} if wf else {},
        date_range={"last_days": last_days},
    ),
    st.lists(st.sampled_from([*COUNTS, *RATES]), min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from(["date_week", "workflow", "step", "rep"]), max_size=2, unique=True),
    st.one_of(
        st.none(),
        st.lists(
            st.sampled_from([*WORKFLOWS, "x' OR '1'='1", "wf-a; DROP TABLE x"]), min_size=1, max_size=2, unique=True
        ),
    ),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(TENANTS),
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=email_definitions)
def test_email_reports_equal_plain_python(mart, definition):
    con, rows = mart
    got = run_report(con, definition, NOW)
    as_tuples = sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in r.values()) for r in got), key=repr)
    assert as_tuples == expected(rows["email"], definition, "send_date", EMAIL_COLUMNS)
    # Filter values are bound, never part of the SQL text.
    query = build_query(definition, NOW)
    for values in definition.filters.values():
        for value in values:
            assert value not in query.sql


def test_activity_report_by_day_and_type(mart):
    con, rows = mart
    definition = ReportDefinition(
        id="a",
        name="A",
        tenant_id="globex",
        metrics=["events", "human_events"],
        dimensions=["date_day", "event_type"],
        date_range={"start": date(2026, 2, 10), "end": date(2026, 3, 1)},
    )
    got = sorted(tuple(r.values()) for r in run_report(con, definition, NOW))
    assert got == sorted(expected(rows["activity"], definition, "event_date", {"event_type": "event_type"}))
    assert got  # the fixture has rows in that range


@settings(max_examples=80, deadline=None, derandomize=True)
@given(name=st.text(min_size=1, max_size=40), where=st.sampled_from(["metrics", "dimensions", "filters", "sort"]))
def test_hostile_names_are_rejected_naming_the_field(name, where):
    known = {*METRIC_NAMES, *DIMENSION_NAMES}
    if name in known:
        return
    base = {"id": "r", "name": "R", "tenant_id": "acme", "metrics": ["sent"], "date_range": {"last_days": 7}}
    if where == "metrics":
        base["metrics"] = [name]
    elif where == "dimensions":
        base["dimensions"] = [name]
    elif where == "filters":
        base["filters"] = {name: ["x"]}
    else:
        base["sort"] = [{"field": name}]
    try:
        definition = ReportDefinition.model_validate(base)
    except ValueError:
        return  # rejected by validation (too long, ...): never reaches the builder
    with pytest.raises(ReportError, match=f"^{where}: "):
        build_query(definition, NOW)


def test_rules_that_name_the_field():
    def make(**kw):
        return ReportDefinition(
            **{"id": "r", "name": "R", "tenant_id": "acme", "metrics": ["sent"], "date_range": {"last_days": 7}, **kw}
        )

    for definition, message in [
        (make(metrics=["sent", "events"]), "^metrics: email and activity metrics cannot be mixed"),
        (make(dimensions=["lead_source"]), "^dimensions: lead_source is not available"),
        (make(dimensions=["team", "date_day"]), "^dimensions: date_day is not available by team"),
        (make(metrics=["positive_reply_rate"], dimensions=["team"]), "^metrics: positive_reply_rate is not available"),
        (make(dimensions=["date_day", "date_week"]), "^dimensions: at most one of"),
        (make(chart={"type": "line", "x": "nope"}), "^chart: 'nope' is not a dimension"),
    ]:
        with pytest.raises(ReportError, match=message):
            build_query(definition, NOW)
    with pytest.raises(ValueError, match="unknown time zone"):
        make(timezone="Mars/Olympus")


def test_relative_range_uses_the_report_timezone():
    late_evening_utc = datetime(2026, 3, 15, 23, 30, tzinfo=UTC)  # already the 16th in Berlin
    berlin = ReportDefinition(
        id="r", name="R", tenant_id="acme", metrics=["sent"], timezone="Europe/Berlin", date_range={"last_days": 7}
    )
    utc = berlin.model_copy(update={"timezone": "UTC"})
    assert (build_query(berlin, late_evening_utc).start, build_query(berlin, late_evening_utc).end) == (
        date(2026, 3, 9),
        date(2026, 3, 16),
    )
    assert build_query(utc, late_evening_utc).end == date(2026, 3, 15)


def test_yaml_definitions_name_file_and_field(tmp_path):
    good = tmp_path / "weekly.yml"
    good.write_text(
        "id: weekly\nname: Weekly email\ntenant_id: acme\nmetrics: [sent, open_rate]\n"
        "dimensions: [date_week]\ndate_range: {last_days: 28}\nchart: {type: line, y: [open_rate]}\n"
    )
    assert load_definition(good).metrics == ["sent", "open_rate"]
    bad = tmp_path / "bad.yml"
    bad.write_text("id: bad\nname: Bad\ntenant_id: acme\nmetrics: [sent]\ndate_range: {last_days: 0}\n")
    with pytest.raises(ReportError, match=r"^bad.yml: date_range.last_days: Input should be greater than or equal"):
        load_definition(bad)


def test_renderings_hold_the_numbers(mart):
    con, _ = mart
    definition = ReportDefinition(
        id="w",
        name="Weekly <email> & co",
        tenant_id="acme",
        metrics=["sent", "replied", "reply_rate"],
        dimensions=["workflow"],
        date_range={"last_days": 45},
        chart={"type": "bar", "y": ["sent"]},
    )
    rows = run_report(con, definition, NOW)
    columns = ["workflow", "sent", "replied", "reply_rate"]
    labels_row, *machine = to_csv(rows, columns).decode().splitlines(keepends=True)
    assert labels_row.strip() == "Sequence,Sent,Replies,Reply rate"
    parsed = list(csv.DictReader(io.StringIO("".join(machine))))  # a machine skips the first row
    assert [int(r["sent"]) for r in parsed] == [r["sent"] for r in rows]
    assert "'=cmd()" in [r["workflow"] for r in parsed]  # neutralised
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(rows, columns, definition.name))).active
    assert [c.value for c in next(sheet.iter_rows(max_row=1))] == ["Sequence", "Sent", "Replies", "Reply rate"]
    assert [r[1].value for r in sheet.iter_rows(min_row=2)] == [r["sent"] for r in rows]
    html = to_html(definition, rows, columns, "last 45 days", "data fresh to 2026-03-15")
    assert "Weekly &lt;email&gt; &amp; co" in html and "data:image/png;base64," in html
    for r in rows:
        assert f"{r['sent']:,}" in html
    pdf = to_pdf(definition, rows, columns, "last 45 days")
    assert pdf.startswith(b"%PDF")


def test_cohort_report_with_a_heatmap():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE mart_cohort_retention AS SELECT * FROM (VALUES "
        "('acme', DATE '2026-01-05', 0, 10, 10, 0), ('acme', DATE '2026-01-05', 1, 10, 4, 1), "
        "('acme', DATE '2026-01-12', 0, 20, 20, 0), ('acme', DATE '2026-01-12', 1, 20, 5, 2), "
        "('globex', DATE '2026-01-05', 0, 99, 1, 0)) "
        "AS t(tenant_id, cohort_week, week_offset, cohort_size, active_leads, converted_leads)"
    )
    by_offset = ReportDefinition(
        id="c",
        name="Retention",
        tenant_id="acme",
        metrics=["cohort_size", "retention_rate"],
        dimensions=["week_offset"],
        date_range={"start": date(2026, 1, 1), "end": date(2026, 2, 1)},
    )
    assert [tuple(r.values()) for r in run_report(con, by_offset, NOW)] == [(0, 30, 1.0), (1, 30, 9 / 30)]
    matrix = ReportDefinition.model_validate(
        {
            **by_offset.model_dump(),
            "dimensions": ["cohort_week", "week_offset"],
            "chart": {"type": "cohort_heatmap", "y": ["retention_rate"]},
        }
    )
    rows = run_report(con, matrix, NOW)
    assert len(rows) == 4 and rows[1]["retention_rate"] == 0.4
    from leadron.report_render import chart_png

    assert chart_png(matrix, rows).startswith(b"\x89PNG")
    with pytest.raises(ReportError, match="^metrics: email and cohort metrics cannot be mixed"):
        build_query(by_offset.model_copy(update={"metrics": ["sent", "cohort_size"]}), NOW)
