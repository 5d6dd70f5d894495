-- Email performance per tenant, UTC send day, sequence, step and rep (METRICS.md).
-- Counts only; rates are derived from these counts at whatever grain is asked for.
-- Engagement (opens, clicks, replies) is counted on delivered messages, so that every
-- rate over `delivered` stays within 0..1.
--
-- Incremental: re-aggregates whole (tenant, send day) partitions of the messages int_messages derived
-- since this model last read it (refreshed_at); the other days are kept.

{{ config(**partition_overwrite(['tenant_id', 'send_date'], rederive={'rows': 'send_days', 'column': 'send_date'}, written={'column': 'refreshed_at', 'from': 'run_start'})) }}

with {% if is_incremental() %}changed_days as (

    {{ refreshed_send_days(this) }}

),

{% endif %}messages as (

    select m.*
    from {{ ref('int_messages') }} as m
    {{- only_changed_days('m', 'm.send_date') }}
    where m.has_send_event

)

select
    {{ surrogate_key(['tenant_id', 'send_date', 'workflow_id', 'step_number', 'user_id']) }} as performance_key,
    tenant_id,
    send_date,
    workflow_id,
    step_number,
    user_id,
{{ email_performance_counts() }},
    max(refreshed_at) as refreshed_at
from messages
group by tenant_id, send_date, workflow_id, step_number, user_id
