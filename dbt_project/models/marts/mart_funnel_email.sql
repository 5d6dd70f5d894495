-- The default email funnel by cohort week (of each lead's step-1 send) and workflow: the per-lead stage
-- int_funnel_email_attempts aggregated by the funnel macro (macros/funnel.sql).
{{ funnel_mart(ref('int_funnel_email_attempts'), 4, {
    'cohort_week': week_start('b.t1'),
    'workflow': 'cast(b.workflow_id as ' ~ dbt.type_string() ~ ')',
}) }}
