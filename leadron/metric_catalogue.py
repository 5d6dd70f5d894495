"""The metric catalogue (METRICS.md): every metric and dimension a report, the dashboard or an e-mail can show,
the mart each comes from, and the one place for their human labels and units."""

from __future__ import annotations

from dataclasses import dataclass

COUNTS = (
    "sent",
    "delivered",
    "bounced",
    "hard_bounced",
    "soft_bounced",
    "opens_total",
    "unique_opens",
    "clicks_total",
    "unique_clicks",
    "replied",
    "positive_replied",
)
RATES = {
    "open_rate": ("unique_opens", "delivered"),
    "click_rate": ("unique_clicks", "delivered"),
    "click_to_open_rate": ("unique_clicks", "unique_opens"),
    "reply_rate": ("replied", "delivered"),
    "positive_reply_rate": ("positive_replied", "replied"),
    "bounce_rate": ("bounced", "sent"),
}
ACTIVITY = ("events", "human_events", "bot_events")
COHORT = ("cohort_size", "active_leads", "converted_leads", "retention_rate", "conversion_rate")
# Ratios of summed counts (METRICS.md), across every source.
RATIOS = {
    **RATES,
    "retention_rate": ("active_leads", "cohort_size"),
    "conversion_rate": ("converted_leads", "cohort_size"),
}
GRAINS = {"date_day": "day", "date_week": "week", "date_month": "month"}


@dataclass(frozen=True)
class Label:
    """How a person reads a field: its label, its unit ("count", "%", "date", "text", "number") and, for a
    metric, whether up is good (True), bad (False) or neither (None)."""

    label: str
    unit: str
    up_is_good: bool | None = None


# The one place for the human names of the catalogue: e-mail, chart, CSV/XLSX/PDF headers and the API.
LABELS = {
    "sent": Label("Sent", "count", True),
    "delivered": Label("Delivered", "count", True),
    "bounced": Label("Bounced", "count", False),
    "hard_bounced": Label("Hard bounces", "count", False),
    "soft_bounced": Label("Soft bounces", "count", False),
    "opens_total": Label("Opens (all)", "count", True),
    "unique_opens": Label("Unique opens", "count", True),
    "clicks_total": Label("Clicks (all)", "count", True),
    "unique_clicks": Label("Unique clicks", "count", True),
    "replied": Label("Replies", "count", True),
    "positive_replied": Label("Positive replies", "count", True),
    "open_rate": Label("Open rate", "%", True),
    "click_rate": Label("Click rate", "%", True),
    "click_to_open_rate": Label("Click-to-open rate", "%", True),
    "reply_rate": Label("Reply rate", "%", True),
    "positive_reply_rate": Label("Positive reply rate", "%", True),
    "bounce_rate": Label("Bounce rate", "%", False),
    "events": Label("Events", "count"),
    "human_events": Label("Human events", "count"),
    "bot_events": Label("Bot events", "count", False),
    "cohort_size": Label("Cohort size", "count", True),
    "active_leads": Label("Active leads", "count", True),
    "converted_leads": Label("Converted leads", "count", True),
    "retention_rate": Label("Retention rate", "%", True),
    "conversion_rate": Label("Conversion rate", "%", True),
    "date_day": Label("Day", "date"),
    "date_week": Label("Week", "date"),
    "date_month": Label("Month", "date"),
    "workflow": Label("Sequence", "text"),
    "step": Label("Step", "number"),
    "rep": Label("Rep", "text"),
    "team": Label("Team", "text"),
    "lead_source": Label("Lead source", "text"),
    "event_type": Label("Event type", "text"),
    "cohort_week": Label("Cohort week", "date"),
    "week_offset": Label("Weeks since first send", "number"),
}


def fields(columns: list[str]) -> list[dict[str, str]]:
    """Each column with its label and unit (what the API's report runs show beside the rows)."""
    return [{"name": c, "label": LABELS[c].label, "unit": LABELS[c].unit} for c in columns]


@dataclass(frozen=True)
class Source:
    table: str
    date_column: str
    metrics: tuple[str, ...]
    dimensions: dict[str, str]  # report dimension -> column


SOURCES = {
    "email": Source(
        "mart_email_performance_daily",
        "send_date",
        (*COUNTS, *RATES),
        {"workflow": "workflow_id", "step": "step_number", "rep": "user_id"},
    ),
    "team": Source(
        "mart_team_performance",
        "week_start",
        (
            "sent",
            "delivered",
            "bounced",
            "unique_opens",
            "unique_clicks",
            "replied",
            *(r for r in RATES if r not in ("click_to_open_rate", "positive_reply_rate")),
        ),
        {"team": "team_id", "rep": "user_id"},
    ),
    "activity": Source("mart_activity_daily", "event_date", ACTIVITY, {"event_type": "event_type"}),
    "cohort": Source(
        "mart_cohort_retention", "cohort_week", COHORT, {"cohort_week": "cohort_week", "week_offset": "week_offset"}
    ),
}
FAMILIES = {"email": (*COUNTS, *RATES), "activity": ACTIVITY, "cohort": COHORT}
METRIC_NAMES = (*COUNTS, *RATES, *ACTIVITY, *COHORT)
DIMENSION_NAMES = (
    *GRAINS,
    "workflow",
    "step",
    "rep",
    "team",
    "lead_source",
    "event_type",
    "cohort_week",
    "week_offset",
)
