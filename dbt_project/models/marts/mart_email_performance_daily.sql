-- Email performance per tenant, UTC send day, sequence, step and rep (METRICS.md).
-- Counts only; rates are derived from these counts at whatever grain is asked for.
-- Engagement (opens, clicks, replies) is counted on delivered messages, so that every
-- rate over `delivered` stays within 0..1.

with messages as (

    select * from {{ ref('int_messages') }}
    where has_send_event

)

select
    {{ surrogate_key(['tenant_id', 'send_date', 'workflow_id', 'step_number', 'user_id']) }} as performance_key,
    tenant_id,
    send_date,
    workflow_id,
    step_number,
    user_id,
{{ email_performance_counts() }}
from messages
group by tenant_id, send_date, workflow_id, step_number, user_id
