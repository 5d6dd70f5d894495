"""Default email funnel mart, computed by the project's funnel engine (orchestration/funnel.py)."""


def model(dbt, session):
    dbt.config(materialized="table")
    # The engine reads these relations; the literal refs record the lineage for dbt and Dagster.
    dbt.ref("stg_leadron__events")
    dbt.ref("int_messages")
    dbt.ref("stg_leadron__leads")
    dbt.ref("int_user_team_history")
    from orchestration.funnel import DEFAULT_EMAIL_FUNNEL, mart_select

    select, params = mart_select(DEFAULT_EMAIL_FUNNEL.model_copy(update={"breakdowns": ("cohort_week", "workflow")}))
    return session.execute(select, params).to_arrow_table()
