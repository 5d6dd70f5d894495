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
    count(*) as sent,
    sum(case when is_bounced then 1 else 0 end) as bounced,
    sum(case when is_hard_bounce then 1 else 0 end) as hard_bounced,
    sum(case when is_soft_bounce then 1 else 0 end) as soft_bounced,
    sum(case when is_delivered then 1 else 0 end) as delivered,
    sum(case when is_delivered then human_opens else 0 end) as opens_total,
    sum(case when is_delivered and human_opens > 0 then 1 else 0 end) as unique_opens,
    sum(case when is_delivered then human_clicks else 0 end) as clicks_total,
    sum(case when is_delivered and human_clicks > 0 then 1 else 0 end) as unique_clicks,
    sum(case when is_delivered and replies > 0 then 1 else 0 end) as replied,
    sum(case when is_delivered and positive_replies > 0 then 1 else 0 end) as positive_replied,
    count(distinct lead_id) as leads_contacted,
    count(distinct case when is_delivered and human_opens > 0 then lead_id end) as leads_opened,
    count(distinct case when is_delivered and human_clicks > 0 then lead_id end) as leads_clicked,
    count(distinct case when is_delivered and replies > 0 then lead_id end) as leads_replied
from messages
group by tenant_id, send_date, workflow_id, step_number, user_id
