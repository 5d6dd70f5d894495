"""Default email funnel mart, computed by the project's funnel engine (orchestration/funnel.py)."""


def model(dbt, session):
    dbt.config(materialized="table")
    # The engine reads the event grain; the literal ref records the lineage for dbt and Dagster.
    dbt.ref("fct_events")
    from orchestration.funnel import DEFAULT_EMAIL_FUNNEL, mart_select

    select, params = mart_select(DEFAULT_EMAIL_FUNNEL.model_copy(update={"breakdowns": ("cohort_week", "workflow")}))
    return session.execute(select, params).to_arrow_table()
