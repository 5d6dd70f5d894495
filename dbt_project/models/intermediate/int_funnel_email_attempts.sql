-- Each lead's attempt that reaches furthest in the default email funnel (email_sent -> email_open ->
-- link_click -> email_reply, 7-day window, human events): the funnel engine's per-entity stage
-- (macros/funnel.sql), which mart_funnel_email aggregates. Incremental: a run re-derives the leads with a step
-- event from its window's first day minus the lookback, each from all of its events (delete+insert by lead).
{{ config(
    on_schema_change='fail',
    **partition_overwrite(['tenant_id', 'entity'], written={'column': 't1', 'from': 'window_day'}),
) }}

{{ funnel_attempts(
    events=ref('fct_events'),
    steps=['email_sent', 'email_open', 'link_click', 'email_reply'],
    window_seconds=7 * 86400,
    entity='lead_id',
    carried=['workflow_id'],
    touched_since=event_window_start() if is_incremental() else none,
) }}
