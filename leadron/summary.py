"""The short summary `leadron demo` (and `leadron run --summary`) prints after a build."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import duckdb

from leadron.settings import Settings


@dataclass(frozen=True)
class Summary:
    events_by_type: list[tuple[str, int, int]]  # event_type, events, of which bots
    tenant: str | None
    kpis: list[tuple]  # send_date, sent, delivered, open %, click %, reply %, bounce %
    models: list[tuple] = ()  # model_version, status, status_reason, roc_auc, baseline_roc_auc, pr_auc, baseline_pr_auc
    scores: list[tuple] = ()  # scoring_method, tier, leads
    top_leads: list[tuple] = ()  # lead_id, score, tier, factor_1
    kpi_columns: tuple[str, ...] = (
        "send_date",
        "sent",
        "delivered",
        "open_rate",
        "click_rate",
        "reply_rate",
        "bounce_rate",
    )


def read_summary(settings: Settings, days: int = 7) -> Summary:
    with closing(duckdb.connect(str(settings.warehouse_path), read_only=True)) as con:
        by_type = con.execute(
            "SELECT event_type, count(*), count(*) FILTER (WHERE is_bot) FROM staging.stg_leadron__events "
            "GROUP BY event_type ORDER BY count(*) DESC"
        ).fetchall()
        top = con.execute(
            "SELECT tenant_id FROM staging.stg_leadron__events "
            "GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT 1"
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
        tables = {
            r[0]
            for r in con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
        }
        models = scores = top = []
        if "ml.ml_models" in tables:
            models = con.execute(
                "SELECT model_version, status, status_reason, roc_auc, baseline_roc_auc, pr_auc, "
                "baseline_pr_auc FROM ml.ml_models ORDER BY trained_at DESC LIMIT 3"
            ).fetchall()
        if "marts.mart_lead_scores" in tables:
            scores = con.execute(
                "SELECT scoring_method, tier, count(*) FROM marts.mart_lead_scores GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            top = con.execute(
                "SELECT lead_id, score, tier, factor_1 FROM marts.mart_lead_scores WHERE tenant_id = ? "
                "ORDER BY probability DESC, lead_id LIMIT 3",
                [tenant],
            ).fetchall()
    return Summary(by_type, tenant, kpis, models, scores, top)


def format_summary(summary: Summary, paths: dict[str, str]) -> str:
    def pct(v: float | None) -> str:
        return "   n/a" if v is None else f"{100 * v:5.1f}%"

    lines = ["", "Events by type (after deduplication)", f"  {'event_type':<16}{'events':>12}{'bots':>10}"]
    lines += [f"  {t:<16}{n:>12,}{b:>10,}" for t, n, b in summary.events_by_type]
    lines += [
        "",
        f"Email KPIs by send day, last 7 days, largest tenant: {summary.tenant}",
        f"  {'send_date':<12}{'sent':>8}{'delivered':>11}{'open':>8}{'click':>8}{'reply':>8}{'bounce':>8}",
    ]
    lines += [
        f"  {d!s:<12}{s:>8,}{dl:>11,}{pct(o):>8}{pct(c):>8}{pct(r):>8}{pct(b):>8}"
        for d, s, dl, o, c, r, b in summary.kpis
    ]
    if summary.models:
        lines += ["", "Lead-score models (newest first; figures on each model's held-back period)"]
        lines += [
            f"  {v}  {status:<10} ROC-AUC {auc:.3f} (baseline {bauc:.3f})  PR-AUC {pr:.3f} (baseline {bpr:.3f})"
            f"  {reason or ''}"
            for v, status, reason, auc, bauc, pr, bpr in summary.models
        ]
    if summary.scores:
        lines += ["", "Open leads scored: " + ", ".join(f"{m} tier {t}: {n:,}" for m, t, n in summary.scores)]
        lines += [
            f"  {summary.tenant} top lead {lead}: score {score}, tier {tier}; {factor}"
            for lead, score, tier, factor in summary.top_leads
        ]
    lines += ["", "Written"] + [f"  {k:<14}{v}" for k, v in paths.items()]
    return "\n".join(lines)
