-- Each lead's attempt that reaches furthest in the default web funnel (page_visit -> form_submission, 7-day
-- window, human events): the funnel engine's per-entity stage (macros/funnel.sql), which mart_funnel_web
-- aggregates. Incremental like int_funnel_email_attempts.
{{ config(
    on_schema_change='fail',
    **partition_overwrite(['tenant_id', 'entity'], written={'column': 't1', 'from': 'window_day'}),
) }}

{{ funnel_attempts(
    events=ref('fct_events'),
    steps=['page_visit', 'form_submission'],
    window_seconds=7 * 86400,
    entity='lead_id',
    carried=['lead_source'],
    touched_since=event_window_start() if is_incremental() else none,
) }}
