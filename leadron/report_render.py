"""A report's rows rendered as CSV, XLSX, HTML (inline CSS, chart inline) and PDF (matplotlib), no browser."""

from __future__ import annotations

import base64
import csv
import io
import math
from datetime import date, datetime

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from leadron.exports import neutralise  # noqa: E402
from leadron.metric_catalogue import LABELS, RATIOS  # noqa: E402
from leadron.reports import Headline, ReportDefinition  # noqa: E402

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#64748b")
GOOD, BAD, NEUTRAL = "#1f7a3a", "#b42318", "#616e7c"


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


def label(column: str) -> str:
    return LABELS[column].label


def headline_value(h: Headline) -> str:
    return cell(h.metric, h.value)


def headline_change(h: Headline, period_days: int) -> str:
    """ "+2.1 pts vs previous 7 days" for rates, "+12% vs ..." for counts; what a phone preview shows."""
    against = f"vs previous {period_days} day{'s' if period_days != 1 else ''}"
    if h.change is None:
        return f"no data for the previous {period_days} days" if h.previous is None or not h.previous else against
    if h.label.unit == "%":
        return f"{h.change * 100:+.1f} pts {against}"
    return f"{h.change * 100:+.{1 if abs(h.change) < 0.1 else 0}f}% {against}"  # "-0.2%", not "-0%"


def headline_colour(h: Headline) -> str:
    """Green when the change goes the good way, red when not, grey when neither."""
    return NEUTRAL if h.good is None else GOOD if h.good else BAD


def headline_lines(headlines: list[Headline], period_days: int) -> list[str]:
    return [f"{h.label.label}: {headline_value(h)} ({headline_change(h, period_days)})" for h in headlines]


def to_csv(rows: list[dict], columns: list[str]) -> bytes:
    """Row 1: the labels a person reads; row 2: the catalogue names, for machines; then the data."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label(c) for c in columns])
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row[c]) if row[c] is not None else "" for c in columns])
    return out.getvalue().encode()


def to_xlsx(rows: list[dict], columns: list[str], title: str) -> bytes:
    """Labels as the header (each with a note holding the catalogue name), rates formatted as percentages."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title[:31] or "report"
    sheet.append([label(c) for c in columns])
    for index, column in enumerate(columns, start=1):
        header = sheet.cell(row=1, column=index)
        header.font = Font(bold=True)
        header.comment = Comment(f"field: {column}", "Leadron Analytics")
        sheet.column_dimensions[header.column_letter].width = max(12, len(header.value) + 2)
    for row in rows:
        sheet.append([neutralise(row[c]) for c in columns])
    for index, column in enumerate(columns, start=1):
        if LABELS[column].unit == "%":
            for (value_cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                value_cell.number_format = "0.0%"
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _tick_label(value: object, count: int) -> str:
    """Dates as a person reads them on an axis: "Mon 24 Nov" for a week of days, "24 Nov" for more."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime("%a %d %b") if count <= 10 else value.strftime("%d %b")
    return str(value) if value is not None else "–"


def _value_axis(ax, unit: str) -> None:
    if unit == "%":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def chart_png(definition: ReportDefinition, rows: list[dict]) -> bytes | None:
    """The report's chart: human labels, percent axes for rates, thousands separators, no title (the e-mail
    and the PDF carry it), a second y-axis only when the series' units differ."""
    chart = definition.chart
    if chart is None or not rows:
        return None
    x_field = chart.x or (definition.dimensions[0] if definition.dimensions else None)
    y_fields = chart.y or definition.metrics[:1]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    if chart.type == "cohort_heatmap" and len(definition.dimensions) >= 2:
        _heatmap(ax, rows, definition.dimensions[0], definition.dimensions[1], y_fields[0])
        return _png(fig)
    if chart.type == "funnel":
        # One bar per metric, in the order given (e.g. sent -> delivered -> unique_opens -> replied), summed.
        totals = [sum(r[f] or 0 for r in rows) for f in y_fields]
        ax.barh([label(f) for f in reversed(y_fields)], list(reversed(totals)), color=PALETTE[0])
        for position, total in enumerate(reversed(totals)):
            ax.text(total, position, f" {total:,}", va="center", fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        return _png(fig)
    units = list(dict.fromkeys(LABELS[f].unit for f in y_fields))
    axes = {units[0]: ax}
    if len(units) > 1:  # counts and rates: two scales, never more
        axes[units[1]] = ax.twinx()
    positions = list(range(len(rows)))
    handles = []
    for index, field in enumerate(y_fields):
        target = axes.get(LABELS[field].unit, ax)
        values = [r[field] if r[field] is not None else 0 for r in rows]
        colour = PALETTE[index % len(PALETTE)]
        if chart.type == "line":
            handles += target.plot(positions, values, marker="o", markersize=3, color=colour, label=label(field))
        else:
            width = 0.8 / len(y_fields)
            handles.append(
                target.bar(
                    [p + (index - (len(y_fields) - 1) / 2) * width for p in positions],
                    values,
                    width=width,
                    color=colour,
                    label=label(field),
                )
            )
    for unit, target in axes.items():
        _value_axis(target, unit)
        if len(axes) > 1:  # which series reads on which side
            target.set_ylabel(", ".join(label(f) for f in y_fields if LABELS[f].unit == unit), fontsize=8)
    step = max(1, math.ceil(len(rows) / 8))  # at most about 8 labels: readable for 7, 30 or 90 days
    ax.set_xticks(positions[::step])
    ax.set_xticklabels(
        [_tick_label(r[x_field], len(rows)) if x_field else "" for r in rows][::step],
        fontsize=7,
        rotation=0 if len(rows) <= 10 else 30,
        ha="center" if len(rows) <= 10 else "right",
    )
    for side in ("top", "right") if len(axes) == 1 else ("top",):
        ax.spines[side].set_visible(False)
    ax.legend(
        handles=handles,
        fontsize=8,
        frameon=False,
        loc="upper left",
        ncols=min(4, len(handles)),
        bbox_to_anchor=(0, 1.14),
    )
    return _png(fig)


def _heatmap(ax, rows: list[dict], row_field: str, column_field: str, value_field: str) -> None:
    """Cohort matrix: one row per cohort, one column per week offset, colour = the metric."""
    row_keys = sorted({r[row_field] for r in rows})
    column_keys = sorted({r[column_field] for r in rows})
    matrix = [[float("nan")] * len(column_keys) for _ in row_keys]
    for r in rows:
        value = r[value_field]
        matrix[row_keys.index(r[row_field])][column_keys.index(r[column_field])] = (
            float(value) if value is not None else float("nan")
        )
    image = ax.imshow(matrix, aspect="auto", cmap="Blues")
    ax.set_yticks(range(len(row_keys)), [cell(row_field, k) for k in row_keys], fontsize=6)
    ax.set_xticks(range(len(column_keys)), [cell(column_field, k) for k in column_keys], fontsize=7)
    ax.set_xlabel(label(column_field), fontsize=8)
    bar = ax.figure.colorbar(image, ax=ax, label=label(value_field))
    if LABELS[value_field].unit == "%":
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


# E-mail clients' HTML: table layout, inline CSS only, 640 px wide, images by cid:, no external resource.
_HTML = jinja2.Environment(
    loader=jinja2.PackageLoader("leadron", "templates"), autoescape=True, keep_trailing_newline=False
).get_template("report_email.html")


def tiles(headlines: list[Headline], period_days: int) -> list[dict[str, str]]:
    """The headline block: value, change against the previous period, green/red by whether it is good."""
    out = []
    for h in headlines:
        arrow = "" if not h.change else ("\u25b2 " if h.change > 0 else "\u25bc ")
        out.append(
            {
                "label": h.label.label,
                "value": headline_value(h),
                "colour": headline_colour(h),
                "change": arrow + headline_change(h, period_days),
            }
        )
    return out


def to_html(
    definition: ReportDefinition,
    rows: list[dict],
    columns: list[str],
    subtitle: str,
    footer: str,
    chart_src: str | None = None,
    headlines: list[Headline] = (),
    period_days: int = 0,
) -> str:
    """The report page; `chart_src` is the image's src (a cid: for e-mail), else the chart inline as data."""
    if chart_src is None:
        png = chart_png(definition, rows)
        chart_src = f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else None
    charted = definition.chart.y if definition.chart and definition.chart.y else definition.metrics[:1]
    return _HTML.render(
        title=definition.name,
        subtitle=subtitle,
        footer=footer,
        chart_src=chart_src,
        chart_alt=", ".join(label(f) for f in charted),
        tiles=tiles(list(headlines), period_days),
        columns=[label(c) for c in columns],
        dims=len(definition.dimensions),
        rows=[[cell(c, r[c]) for c in columns] for r in rows],
    )


def to_pdf(
    definition: ReportDefinition,
    rows: list[dict],
    columns: list[str],
    subtitle: str,
    headlines: list[Headline] = (),
    period_days: int = 0,
) -> bytes:
    """A PDF with the title, the headline numbers, the table (first 40 rows per page) and the same chart."""
    out = io.BytesIO()
    with PdfPages(out, metadata={"Title": definition.name, "Creator": "Leadron Analytics"}) as pdf:
        pages = [rows[i : i + 40] for i in range(0, len(rows), 40)] or [[]]
        for number, page in enumerate(pages):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.06, 0.96, definition.name, fontsize=15, weight="bold")
            fig.text(
                0.06,
                0.935,
                subtitle + (f" (page {number + 1} of {len(pages)})" if len(pages) > 1 else ""),
                fontsize=9,
                color=NEUTRAL,
            )
            top = 0.91
            if number == 0:
                for index, h in enumerate(headlines):
                    fig.text(0.06 + index * 0.225, 0.905, h.label.label, fontsize=8, color=NEUTRAL)
                    fig.text(0.06 + index * 0.225, 0.885, headline_value(h), fontsize=13, weight="bold")
                    fig.text(
                        0.06 + index * 0.225,
                        0.87,
                        headline_change(h, period_days).replace(" vs ", "\nvs "),
                        fontsize=7,
                        va="top",
                        color=headline_colour(h),
                    )
                top = 0.83 if headlines else top
            ax = fig.add_axes([0.06, 0.05, 0.88, top - 0.05])
            ax.axis("off")
            if page:
                table = ax.table(
                    cellText=[[cell(c, r[c]) for c in columns] for r in page],
                    colLabels=[label(c) for c in columns],
                    loc="upper center",
                    cellLoc="right",
                )
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
