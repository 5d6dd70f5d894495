-- The default web funnel by cohort week (of each lead's step-1 visit) and lead source: the per-lead stage
-- int_funnel_web_attempts aggregated by the funnel macro (macros/funnel.sql).
{{ funnel_mart(ref('int_funnel_web_attempts'), 2, {
    'cohort_week': week_start('b.t1'),
    'lead_source': 'cast(b.lead_source as ' ~ dbt.type_string() ~ ')',
}) }}
