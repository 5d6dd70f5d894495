"""The default funnel marts, built with the funnel engine (orchestration/funnel.py)."""

import dagster as dg

from orchestration.funnel import DEFAULT_EMAIL_FUNNEL, DEFAULT_WEB_FUNNEL, FunnelSpec, funnel_sql
from orchestration.resources import WarehouseResource

UPSTREAM = [dg.AssetKey(["staging", "stg_leadron__events"]), dg.AssetKey(["intermediate", "int_messages"]),
            dg.AssetKey(["staging", "stg_leadron__leads"]), dg.AssetKey(["intermediate", "int_user_team_history"])]


def mart_select(spec: FunnelSpec) -> tuple[str, dict]:
    """The engine's query with conversion columns added (wide: one column set per step)."""
    sql, params = funnel_sql(spec)
    extra = []
    for k in range(2, len(spec.steps) + 1):
        extra.append(f"CASE WHEN step1_entities = 0 THEN NULL ELSE step{k}_entities / step1_entities END "
                     f"AS step{k}_conversion_from_start")
        extra.append(f"CASE WHEN step{k - 1}_entities = 0 THEN NULL ELSE step{k}_entities / step{k - 1}_entities END "
                     f"AS step{k}_conversion_from_previous")
    return f"SELECT *, {', '.join(extra)} FROM ({sql})", params


def build_funnel_asset(name: str, spec: FunnelSpec, description: str) -> dg.AssetsDefinition:
    @dg.asset(key=["marts", name], group_name="marts", deps=UPSTREAM, kinds={"duckdb"}, description=description)
    def _funnel(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        select, params = mart_select(spec)
        with warehouse.writer() as con:
            con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS {select}", params)
            rows = con.execute(f"SELECT count(*), coalesce(sum(step1_entities), 0) FROM marts.{name}").fetchone()
        context.log.info(f"marts.{name}: {rows[0]:,} rows, {rows[1]:,} entities entered")
        return dg.MaterializeResult(metadata={"rows": rows[0], "entities_entered": rows[1]})

    return _funnel


def build_funnel_assets() -> list[dg.AssetsDefinition]:
    email = DEFAULT_EMAIL_FUNNEL.model_copy(update={"breakdowns": ("cohort_week", "workflow")})
    web = DEFAULT_WEB_FUNNEL.model_copy(update={"breakdowns": ("cohort_week", "lead_source")})
    return [
        build_funnel_asset("mart_funnel_email", email,
                           "Default email funnel (METRICS.md): email_sent -> email_open -> link_click -> email_reply, "
                           "7-day window, human events, lead entity; per tenant, cohort week of step 1 (Monday) and "
                           "workflow of the step-1 message: stepK_entities, stepK_conversion_from_start/previous, "
                           "stepK_avg/median_seconds (from the previous step)."),
        build_funnel_asset("mart_funnel_web", web,
                           "Default web funnel: page_visit -> form_submission, 7-day window, lead entity; per tenant, "
                           "cohort week of step 1 and lead source."),
    ]
