"""The HTML report in a real headless browser (Debian's chromium): the table and the chart image show."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime

import duckdb
import pytest

from leadron.report_render import to_html
from leadron.reports import ReportDefinition, run_report
from tests.conftest import CHROMIUM_LOG, chromium_path

PROBE = """<script>window.addEventListener('load', () => {
  const img = document.images[0];
  document.title = 'img=' + img.naturalWidth + 'x' + img.naturalHeight
    + ';rows=' + document.querySelectorAll('#data tbody tr').length
    + ';cells=' + Array.from(document.querySelectorAll('#data tbody td')).map(td => td.textContent).join('|');
});</script></body>"""


def test_the_report_page_shows_its_table_and_chart(tmp_path):
    browser = chromium_path()
    if browser is None:
        log = CHROMIUM_LOG.read_text()[-400:] if CHROMIUM_LOG.exists() else "no install log"
        pytest.fail(f"chromium is not installed and could not be installed here: {log}")
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE mart_activity_daily AS SELECT * FROM (VALUES "
        "('acme', DATE '2026-03-02', 'email_open', 120, 100, 20), "
        "('acme', DATE '2026-03-03', 'email_open', 90, 85, 5), "
        "('acme', DATE '2026-03-04', 'email_open', 150, 120, 30)) "
        "AS t(tenant_id, event_date, event_type, events, human_events, bot_events)"
    )
    definition = ReportDefinition(
        id="opens",
        name="Opens per day",
        tenant_id="acme",
        metrics=["events", "human_events"],
        dimensions=["date_day"],
        date_range={"start": date(2026, 3, 1), "end": date(2026, 3, 8)},
        chart={"type": "line", "y": ["events", "human_events"]},
    )
    rows = run_report(con, definition, datetime(2026, 3, 8, tzinfo=UTC))
    html = to_html(
        definition,
        rows,
        ["date_day", "events", "human_events"],
        "2026-03-01 to 2026-03-07",
        "Data fresh to 2026-03-08T06:00:00 UTC",
    )
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", PROBE))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    width, height = (int(v) for v in re.search(r"img=(\d+)x(\d+)", title).groups())
    assert width > 300 and height > 150  # the chart image decoded and has a size
    assert "rows=3" in title
    assert "cells=2026-03-02|120|100|2026-03-03|90|85|2026-03-04|150|120" in title
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=900,1100", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
