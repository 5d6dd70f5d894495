{{ config(**partition_overwrite(['tenant_id', 'message_id'], written={'column': 'sent_at', 'from': 'window_day'})) }}

-- One row per message that has an email_sent event: its first send, with the message's
-- lead, rep, sequence and step taken from the messages dimension, else from the send event.
--
-- Incremental (with a run window, see event_window_start): only messages with a send in the window are
-- re-derived, each from all of its sends; the others are kept.

{%- set window_start = event_window_start() if is_incremental() else '' %}

with events as (

    select * from {{ ref('stg_leadron__events') }}

),

messages as (

    select * from {{ ref('stg_leadron__messages') }}

),

{% if window_start %}
touched as (

    select distinct tenant_id, message_id
    from events
    where event_type = 'email_sent'
        and message_id is not null
        and event_date >= {{ window_start }}

),
{% endif %}

ranked_sends as (

    select
        events.*,
        row_number() over (
            partition by events.tenant_id, events.message_id
            order by events.occurred_at, events.event_id
        ) as send_rank
    from events
    {% if window_start %}
    inner join touched
        on events.tenant_id = touched.tenant_id
        and events.message_id = touched.message_id
    {% endif %}
    where events.event_type = 'email_sent'
        and events.message_id is not null

)

select
    s.tenant_id,
    s.message_id,
    s.event_id as send_event_id,
    s.occurred_at as sent_at,
    coalesce(m.lead_id, s.lead_id) as lead_id,
    coalesce(m.user_id, s.user_id) as user_id,
    coalesce(m.workflow_id, s.workflow_id) as workflow_id,
    coalesce(m.workflow_execution_id, s.workflow_execution_id) as workflow_execution_id,
    coalesce(m.step_number, s.step_number) as step_number
from ranked_sends as s
left join messages as m
    on s.tenant_id = m.tenant_id
    and s.message_id = m.message_id
where s.send_rank = 1
