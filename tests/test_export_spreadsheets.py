"""Exports of hostile text: spreadsheet formulas neutralised in CSV and XLSX, numbers kept numbers."""

from __future__ import annotations

import duckdb

from leadron.exports import ExportRequest, run_export
from leadron.publish import publish
from tests.conftest import use_home


def test_spreadsheet_formulas_are_neutralised_and_numbers_stay_numbers(tmp_path, monkeypatch):
    """A hand-made warehouse whose mart holds hostile text, published and exported like any other."""
    settings = use_home(monkeypatch, tmp_path / "home")
    settings.ensure_dirs()
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "plain", "-"]
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        con.execute("CREATE TABLE staging.stg_leadron__events AS SELECT TIMESTAMP '2026-03-01 10:00:00' AS received_at")
        con.execute(
            "CREATE TABLE marts.mart_page_visits_daily (tenant_id VARCHAR, page_url VARCHAR, visit_date DATE, "
            "visits BIGINT, unique_leads BIGINT)"
        )
        for i, text in enumerate(hostile):
            con.execute(
                "INSERT INTO marts.mart_page_visits_daily VALUES ('t1', ?, DATE '2026-03-01', ?, ?)", [text, -5 + i, i]
            )
        con.execute("INSERT INTO marts.mart_page_visits_daily VALUES ('t2', '=evil()', DATE '2026-03-01', 1, 1)")
        publish(con, settings.publish_dir)
    csv = run_export(settings, ExportRequest(tenant_id="t1", dataset="mart_page_visits_daily", format="csv"))
    xlsx = run_export(settings, ExportRequest(tenant_id="t1", dataset="mart_page_visits_daily", format="xlsx"))
    expected = ["'" + t if t[0] in "=+-@\t\r" else t for t in hostile]
    import csv as csv_module

    with csv.path.open(newline="") as fh:  # newline="": keep a CR inside a quoted cell as it is
        from_csv = list(csv_module.DictReader(fh))
    assert sorted(r["page_url"] for r in from_csv) == sorted(expected)
    assert sorted(int(r["visits"]) for r in from_csv) == list(range(-5, 3))  # numbers, negative too, untouched
    import openpyxl

    sheet = openpyxl.load_workbook(xlsx.path).active
    cells = {row[1].value: row[3].value for row in sheet.iter_rows(min_row=2)}
    # XML (inside XLSX) stores a CR as LF; the cell is still neutralised.
    assert sorted(cells) == sorted(e.replace("\r", "\n") for e in expected)
    assert all(isinstance(v, int) for v in cells.values())
    assert "evil" not in csv.path.read_text()  # tenant t2's row never leaves
