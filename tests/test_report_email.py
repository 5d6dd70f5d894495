"""The report e-mail as its recipient opens it: headline numbers against the previous period, human labels
from the catalogue, charts that read at a glance; rendered in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import base64
import html as html_lib
import json
import re
import subprocess
from datetime import UTC, date, datetime

import duckdb
import pytest

from leadron.metric_catalogue import DIMENSION_NAMES, LABELS, METRIC_NAMES, RATIOS
from leadron.publish import publish
from leadron.report_delivery import deliver
from leadron.report_schedules import ReportSchedule
from leadron.reports import ReportDefinition, run_headlines
from tests.conftest import CHROMIUM_LOG, chromium_path, use_home

NOW = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # a Monday: "last 7 days" is Mon 2 .. Sun 8 March
COLUMNS = (
    "tenant_id",
    "send_date",
    "workflow_id",
    "step_number",
    "user_id",
    "sent",
    "delivered",
    "bounced",
    "unique_opens",
    "replied",
)
ROWS = [  # this week, the week before (the previous period), and rows that belong to neither
    ("acme", date(2026, 3, 2), "wf-a", 1, "rep1", 200, 190, 10, 95, 19),
    ("acme", date(2026, 3, 4), "wf-b", 1, "rep2", 100, 96, 4, 40, 6),
    ("acme", date(2026, 3, 8), "wf-a", 2, "rep1", 50, 50, 0, 30, 5),
    ("acme", date(2026, 2, 23), "wf-a", 1, "rep1", 150, 147, 3, 50, 9),
    ("acme", date(2026, 3, 1), "wf-b", 1, "rep2", 100, 99, 1, 45, 6),
    ("acme", date(2026, 2, 22), "wf-a", 1, "rep1", 1000, 900, 100, 10, 1),  # before the previous period
    ("globex", date(2026, 3, 3), "wf-x", 1, "rep9", 999, 990, 9, 500, 99),  # another tenant
]
REPORT = ReportDefinition(
    id="daily-kpis",
    name="Daily email KPIs",
    tenant_id="acme",
    metrics=["sent", "open_rate", "reply_rate", "bounce_rate", "delivered"],
    dimensions=["date_day"],
    date_range={"last_days": 7},
    chart={"type": "line", "y": ["sent", "open_rate"]},
)
SCHEDULE = ReportSchedule(
    id="every-morning", cadence="daily", time="08:00", recipients=["manager@acme.example"], formats=["csv", "pdf"]
)


def expected(first: date, last: date) -> dict[str, float]:
    """The period's totals in plain Python: rates are ratios of summed counts."""
    sums = dict.fromkeys(("sent", "delivered", "bounced", "unique_opens", "replied"), 0)
    for row in ROWS:
        record = dict(zip(COLUMNS, row))
        if record["tenant_id"] == "acme" and first <= record["send_date"] <= last:
            for name in sums:
                sums[name] += record[name]
    return {
        "sent": sums["sent"],
        "open_rate": sums["unique_opens"] / sums["delivered"],
        "reply_rate": sums["replied"] / sums["delivered"],
        "bounce_rate": sums["bounced"] / sums["sent"],
    }


def load_mart(con: duckdb.DuckDBPyConnection, table: str = "mart_email_performance_daily") -> None:
    columns = ", ".join(
        f"{c} {'DATE' if c == 'send_date' else 'BIGINT' if c in COLUMNS[5:] or c == 'step_number' else 'VARCHAR'}"
        for c in COLUMNS
    )
    con.execute(f"CREATE TABLE {table} ({columns})")
    con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(COLUMNS))})", ROWS)
    for column in ("hard_bounced", "soft_bounced", "opens_total", "clicks_total", "unique_clicks", "positive_replied"):
        con.execute(f"ALTER TABLE {table} ADD COLUMN {column} BIGINT DEFAULT 0")


@pytest.fixture
def published(tmp_path, monkeypatch):
    settings = use_home(monkeypatch, tmp_path / "home")
    settings.ensure_dirs()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        con.execute("CREATE TABLE staging.stg_leadron__events AS SELECT TIMESTAMP '2026-03-09 05:00:00' AS received_at")
        load_mart(con, "marts.mart_email_performance_daily")
        publish(con, settings.publish_dir, now=datetime(2026, 3, 9, 5, 30, tzinfo=UTC))
    return settings


def test_every_catalogue_field_has_a_label_and_a_unit():
    for name in (*METRIC_NAMES, *DIMENSION_NAMES):
        assert name in LABELS, f"{name} has no label in the catalogue"
        assert LABELS[name].label and LABELS[name].label != name, name
        assert LABELS[name].unit in ("count", "%", "date", "text", "number"), name
    assert all(LABELS[r].unit == "%" for r in RATIOS) and LABELS["bounce_rate"].up_is_good is False


def test_headlines_equal_the_marts_numbers_for_this_and_the_previous_period():
    con = duckdb.connect()
    load_mart(con)
    headlines = run_headlines(con, REPORT, NOW)
    now, before = expected(date(2026, 3, 2), date(2026, 3, 8)), expected(date(2026, 2, 23), date(2026, 3, 1))
    assert (now["sent"], before["sent"]) == (350, 250)  # the fixture, by hand
    assert [h.metric for h in headlines] == ["sent", "open_rate", "reply_rate", "bounce_rate"]  # at most four
    for h in headlines:
        assert h.value == pytest.approx(now[h.metric], rel=1e-12)
        assert h.previous == pytest.approx(before[h.metric], rel=1e-12)
    sent, opened, replied, bounced = headlines
    assert sent.change == pytest.approx(0.4) and sent.good is True  # +40%: counts change relatively
    assert opened.change == pytest.approx(now["open_rate"] - before["open_rate"])  # rates change in points
    assert bounced.change == pytest.approx(14 / 350 - 4 / 250) and bounced.good is False  # up is bad


def test_the_email_leads_with_headlines_and_labels(published, smtp):
    inbox, smtp_settings = smtp
    assert deliver(published, REPORT, SCHEDULE, NOW, smtp=smtp_settings)["status"] == "sent"
    ((_, message),) = inbox.messages
    html = message.get_body(("html",)).get_content()
    now, before = expected(date(2026, 3, 2), date(2026, 3, 8)), expected(date(2026, 2, 23), date(2026, 3, 1))
    open_pts = (now["open_rate"] - before["open_rate"]) * 100
    for tile in (
        "Sent",
        "350",
        "+40% vs previous 7 days",
        "Open rate",
        f"{now['open_rate'] * 100:.1f}%",
        f"+{open_pts:.1f} pts vs previous 7 days",
        "Bounce rate",
        "+2.4 pts vs previous 7 days",
    ):
        assert tile in html, tile
    assert "#b42318" in html and "#1f7a3a" in html  # the bounce rate's rise is red, the others' green
    for header in ("Day", "Sent", "Open rate", "Reply rate", "Bounce rate", "Delivered"):
        assert f">{header}</th>" in html
    assert "date_day" not in html and "open_rate" not in html
    # Mail-client safe: no external resource, the chart by cid:, at most 640 px wide.
    assert not re.search(r"""(src|href)=["']https?:""", html) and "<link" not in html and "<style" not in html
    assert 'src="cid:chart"' in html and 'width="640"' in html and "max-width:640px" in html
    text = message.get_body(("plain",)).get_content().splitlines()
    assert text[2:6] == [
        "Sent: 350 (+40% vs previous 7 days)",
        f"Open rate: {now['open_rate'] * 100:.1f}% (+{open_pts:.1f} pts vs previous 7 days)",
        f"Reply rate: {now['reply_rate'] * 100:.1f}% "
        f"(+{(now['reply_rate'] - before['reply_rate']) * 100:.1f} pts vs previous 7 days)",
        "Bounce rate: 4.0% (+2.4 pts vs previous 7 days)",
    ]
    assert "Day\tSent\tOpen rate" in "\n".join(text)


PROBE = """<script>window.addEventListener('load', () => {
  const shown = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
                        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const img = document.images[0];
  document.title = JSON.stringify({
    img: [img.naturalWidth, img.naturalHeight, shown(img), Math.round(img.getBoundingClientRect().width)],
    tiles: Array.from(document.querySelectorAll('td.tile')).map(t => [
      t.innerText.replace(/\\s+/g, ' ').trim(), shown(t),
             getComputedStyle(t.querySelector('.tile-change')).color]),
    heads: Array.from(document.querySelectorAll('#data th')).map(h => [h.innerText, shown(h)]),
    cells: Array.from(document.querySelectorAll('#data tbody td')).map(c => c.textContent),
    width: Math.round(document.querySelector('table[width="640"]').getBoundingClientRect().width)});
});</script></body>"""


def test_the_email_renders_in_a_browser_with_tiles_headers_and_chart(published, smtp, tmp_path):
    browser = chromium_path()
    if browser is None:
        log = CHROMIUM_LOG.read_text()[-400:] if CHROMIUM_LOG.exists() else "no install log"
        pytest.fail(f"chromium is not installed and could not be installed here: {log}")
    inbox, smtp_settings = smtp
    deliver(published, REPORT, SCHEDULE, NOW, smtp=smtp_settings)
    ((_, message),) = inbox.messages
    html = message.get_body(("html",)).get_content()
    png = next(p for p in message.walk() if p.get_content_type() == "image/png").get_content()
    page = tmp_path / "email.html"  # as a mail client shows it: the cid: image resolved from the message
    page.write_text(
        html.replace("cid:chart", "data:image/png;base64," + base64.b64encode(png).decode()).replace("</body>", PROBE)
    )
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1000,1400",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    seen = json.loads(html_lib.unescape(re.search(r"<title>(.*?)</title>", dom, re.S).group(1)))
    width, height, visible, shown_width = seen["img"]
    assert width > 500 and height > 200 and visible and 500 < shown_width <= 592
    assert [t[0].split(" ")[0] for t in seen["tiles"]] == ["Sent", "Open", "Reply", "Bounce"]
    assert all(t[1] for t in seen["tiles"])
    assert [t[2] for t in seen["tiles"]] == ["rgb(31, 122, 58)"] * 3 + ["rgb(180, 35, 24)"]  # green, green, green, red
    assert [h[0] for h in seen["heads"]] == ["Day", "Sent", "Open rate", "Reply rate", "Bounce rate", "Delivered"]
    assert all(h[1] for h in seen["heads"])
    assert seen["cells"][:2] == ["2026-03-02", "200"] and seen["width"] <= 640
    shot = tmp_path / "email.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
