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
        # The rates come from mart_kpis_daily, the one place they are derived from the counts.
        kpis = con.execute(
            """
            SELECT kpi_date, sent, delivered, open_rate, click_rate, reply_rate, bounce_rate
            FROM marts.mart_kpis_daily
            WHERE tenant_id = ? AND sent > 0
              AND kpi_date > (SELECT max(kpi_date) FROM marts.mart_kpis_daily WHERE tenant_id = ? AND sent > 0) - ?
            ORDER BY kpi_date
            """,
            [tenant, tenant, days],
        ).fetchall()
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
