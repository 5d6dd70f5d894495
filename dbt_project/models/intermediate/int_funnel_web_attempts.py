"""Each lead's attempt that reaches furthest in the default web funnel: the funnel engine's per-entity
stage (leadron/funnel.py), which mart_funnel_web aggregates.

Incremental (with a run window): only the leads with a step event from the window's first day minus the
lookback are re-derived, each from all of its events; the event grain changes only from that day on.
"""


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key=["tenant_id", "entity"], incremental_strategy="delete+insert")
    # The engine reads the event grain; the literal ref records the lineage for dbt and Dagster.
    dbt.ref("fct_events")
    from leadron.funnel import WEB_FUNNEL_MART, incremental_since, stored_attempts

    since = incremental_since(dbt.config.get("window_min_date"), dbt.config.get("lookback_days"))
    return stored_attempts(session, WEB_FUNNEL_MART, since if dbt.is_incremental else None)
