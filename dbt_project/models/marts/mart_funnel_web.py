"""Default web funnel mart, computed by the project's funnel engine (leadron/funnel.py) from the
per-lead stage it keeps in int_funnel_web_attempts."""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("int_funnel_web_attempts")
    from leadron.funnel import WEB_FUNNEL_MART, mart_select

    select, params = mart_select(WEB_FUNNEL_MART, attempts="intermediate.int_funnel_web_attempts")
    return session.execute(select, params).to_arrow_table()
