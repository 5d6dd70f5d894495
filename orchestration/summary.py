"""The short summary `leadron demo` (and `leadron run --summary`) prints after a build."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import duckdb

from orchestration.settings import Settings


@dataclass(frozen=True)
class Summary:
    events_by_type: list[tuple[str, int, int]]  # event_type, events, of which bots
    tenant: str | None
    kpis: list[tuple]  # send_date, sent, delivered, open %, click %, reply %, bounce %
    kpi_columns: tuple[str, ...] = ("send_date", "sent", "delivered", "open_rate", "click_rate", "reply_rate", "bounce_rate")


def _pct(num: int, den: int) -> float | None:
    """A METRICS.md rate: NULL when the denominator is 0."""
    return None if not den else num / den


def read_summary(settings: Settings, days: int = 7) -> Summary:
    with closing(duckdb.connect(str(settings.warehouse_path), read_only=True)) as con:
        by_type = con.execute(
            "SELECT event_type, count(*), count(*) FILTER (WHERE is_bot) FROM staging.stg_leadron__events "
            "GROUP BY event_type ORDER BY count(*) DESC"
        ).fetchall()
        top = con.execute(
            "SELECT tenant_id FROM staging.stg_leadron__events GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT 1"
        ).fetchone()
        tenant = top[0] if top else None
        rows = con.execute(
            """
            SELECT send_date, sum(sent), sum(delivered), sum(unique_opens), sum(unique_clicks), sum(replied), sum(bounced)
            FROM marts.mart_email_performance_daily
            WHERE tenant_id = ?
              AND send_date > (SELECT max(send_date) FROM marts.mart_email_performance_daily WHERE tenant_id = ?) - ?
            GROUP BY send_date ORDER BY send_date
            """,
            [tenant, tenant, days],
        ).fetchall()
    kpis = [(d, s, dl, _pct(o, dl), _pct(c, dl), _pct(r, dl), _pct(b, s)) for d, s, dl, o, c, r, b in rows]
    return Summary(by_type, tenant, kpis)


def format_summary(summary: Summary, paths: dict[str, str]) -> str:
    def pct(v: float | None) -> str:
        return "   n/a" if v is None else f"{100 * v:5.1f}%"

    lines = ["", "Events by type (after deduplication)", f"  {'event_type':<16}{'events':>12}{'bots':>10}"]
    lines += [f"  {t:<16}{n:>12,}{b:>10,}" for t, n, b in summary.events_by_type]
    lines += ["", f"Email KPIs by send day, last 7 days, largest tenant: {summary.tenant}",
              f"  {'send_date':<12}{'sent':>8}{'delivered':>11}{'open':>8}{'click':>8}{'reply':>8}{'bounce':>8}"]
    lines += [f"  {d!s:<12}{s:>8,}{dl:>11,}{pct(o):>8}{pct(c):>8}{pct(r):>8}{pct(b):>8}"
              for d, s, dl, o, c, r, b in summary.kpis]
    lines += ["", "Written"] + [f"  {k:<14}{v}" for k, v in paths.items()]
    return "\n".join(lines)
