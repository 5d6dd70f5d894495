"""A report's rows rendered as CSV, XLSX, HTML (inline CSS, chart inline) and PDF (matplotlib), no browser."""

from __future__ import annotations

import base64
import csv
import io
from datetime import date, datetime

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from orchestration.exports import neutralise  # noqa: E402
from orchestration.reports import RATIOS, ReportDefinition  # noqa: E402


def cell(column: str, value: object) -> str:
    """How a value reads in a table: rates as percentages, counts with separators, dates as ISO."""
    if value is None:
        return "–"
    if column in RATIOS and isinstance(value, float):
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def to_csv(rows: list[dict], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row[c]) if row[c] is not None else "" for c in columns])
    return out.getvalue().encode()


def to_xlsx(rows: list[dict], columns: list[str], title: str) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title[:31] or "report"
    sheet.append(columns)
    for row in rows:
        sheet.append([neutralise(row[c]) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_png(definition: ReportDefinition, rows: list[dict]) -> bytes | None:
    chart = definition.chart
    if chart is None or not rows:
        return None
    x_field = chart.x or (definition.dimensions[0] if definition.dimensions else None)
    y_fields = chart.y or definition.metrics[:1]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    if chart.type == "cohort_heatmap" and len(definition.dimensions) >= 2:
        _heatmap(ax, rows, definition.dimensions[0], definition.dimensions[1], y_fields[0])
        return _png(fig, definition.name)
    if chart.type == "funnel":
        # One bar per metric, in the order given (e.g. sent -> delivered -> unique_opens -> replied), summed.
        totals = [sum(r[f] or 0 for r in rows) for f in y_fields]
        ax.barh(list(reversed(y_fields)), list(reversed(totals)))
        for position, total in enumerate(reversed(totals)):
            ax.text(total, position, f" {total:,}", va="center", fontsize=8)
        return _png(fig, definition.name)
    labels = [cell(x_field, r[x_field]) if x_field else "" for r in rows]
    positions = range(len(rows))
    for index, field in enumerate(y_fields):
        values = [r[field] if r[field] is not None else 0 for r in rows]
        if chart.type == "line":
            ax.plot(list(positions), values, marker="o", label=field)
        else:
            width = 0.8 / len(y_fields)
            ax.bar([p + index * width for p in positions], values, width=width, label=field)
    ax.set_xticks(list(positions))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.legend(fontsize=8)
    return _png(fig, definition.name)


def _heatmap(ax, rows: list[dict], row_field: str, column_field: str, value_field: str) -> None:
    """Cohort matrix: one row per cohort, one column per week offset, colour = the metric."""
    row_keys = sorted({r[row_field] for r in rows})
    column_keys = sorted({r[column_field] for r in rows})
    matrix = [[float("nan")] * len(column_keys) for _ in row_keys]
    for r in rows:
        value = r[value_field]
        matrix[row_keys.index(r[row_field])][column_keys.index(r[column_field])] = (
            float(value) if value is not None else float("nan"))
    image = ax.imshow(matrix, aspect="auto", cmap="Blues")
    ax.set_yticks(range(len(row_keys)), [cell(row_field, k) for k in row_keys], fontsize=6)
    ax.set_xticks(range(len(column_keys)), [cell(column_field, k) for k in column_keys], fontsize=7)
    ax.set_xlabel(column_field)
    ax.figure.colorbar(image, ax=ax, label=value_field)


def _png(fig, title: str) -> bytes:
    fig.axes[0].set_title(title)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


_HTML = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:Helvetica,Arial,sans-serif;color:#1f2933">
<div style="max-width:760px;margin:0 auto;background:#ffffff;border:1px solid #e4e7eb;border-radius:6px;padding:24px">
<h1 style="font-size:20px;margin:0 0 4px 0">{{ title }}</h1>
<p style="font-size:13px;color:#616e7c;margin:0 0 16px 0">{{ subtitle }}</p>
{% if chart_src %}<img src="{{ chart_src }}" alt="chart: {{ title }}" style="max-width:100%;margin-bottom:16px">{% endif %}
<table style="border-collapse:collapse;width:100%;font-size:13px">
<thead><tr>{% for c in columns %}<th style="text-align:{{ 'left' if loop.index0 < dims else 'right' }};border-bottom:2px solid #cbd2d9;padding:6px 8px">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr>{% for value in row %}<td style="text-align:{{ 'left' if loop.index0 < dims else 'right' }};border-bottom:1px solid #e4e7eb;padding:6px 8px">{{ value }}</td>{% endfor %}</tr>{% endfor %}</tbody>
</table>
{% if not rows %}<p style="font-size:13px;color:#616e7c">No data in this period.</p>{% endif %}
<p style="font-size:11px;color:#9aa5b1;margin-top:16px">{{ footer }}</p>
</div></body></html>""")


def to_html(definition: ReportDefinition, rows: list[dict], columns: list[str], subtitle: str, footer: str,
            chart_src: str | None = None) -> str:
    """The report page; `chart_src` is the image's src (a cid: for e-mail), else the chart inline as data."""
    if chart_src is None:
        png = chart_png(definition, rows)
        chart_src = f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else None
    return _HTML.render(title=definition.name, subtitle=subtitle, footer=footer, chart_src=chart_src,
                        columns=columns, dims=len(definition.dimensions),
                        rows=[[cell(c, r[c]) for c in columns] for r in rows])


def to_pdf(definition: ReportDefinition, rows: list[dict], columns: list[str], subtitle: str) -> bytes:
    """A PDF with the title, the table (first 40 rows per page) and the chart."""
    out = io.BytesIO()
    with PdfPages(out, metadata={"Title": definition.name, "Creator": "Leadron Analytics"}) as pdf:
        pages = [rows[i:i + 40] for i in range(0, len(rows), 40)] or [[]]
        for number, page in enumerate(pages):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.06, 0.96, definition.name, fontsize=15, weight="bold")
            fig.text(0.06, 0.935, subtitle + (f" (page {number + 1} of {len(pages)})" if len(pages) > 1 else ""),
                     fontsize=9, color="#616e7c")
            ax = fig.add_axes([0.06, 0.05, 0.88, 0.86])
            ax.axis("off")
            if page:
                table = ax.table(cellText=[[cell(c, r[c]) for c in columns] for r in page], colLabels=columns,
                                 loc="upper center", cellLoc="right")
                table.auto_set_font_size(False)
                table.set_fontsize(7)
            else:
                ax.text(0, 1, "No data in this period.", fontsize=10, va="top")
            pdf.savefig(fig)
            plt.close(fig)
        png = chart_png(definition, rows)
        if png:
            fig = plt.figure(figsize=(8.27, 5))
            fig.figimage(plt.imread(io.BytesIO(png)), xo=20, yo=20)
            pdf.savefig(fig)
            plt.close(fig)
    return out.getvalue()
