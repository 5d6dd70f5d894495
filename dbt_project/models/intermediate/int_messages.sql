-- One row per message known from a send event or the messages dimension: its send time
-- (the email_sent event, else the dimension's sent_at), bounce, human and bot opens and
-- clicks, and attributed replies. The shared grain of every email-performance number.
--
-- Incremental (with a run window, see event_window_start): re-derives, each from all of its events, the
-- messages with a send, bounce, open or click in the window and those whose attributed replies changed
-- (a reply re-attributed changes its old message too); the others are kept.

{{ config(**partition_overwrite(['tenant_id', 'message_id'], written={'column': 'refreshed_at', 'from': 'run_start'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}

with replies as (

    select
        tenant_id,
        attributed_message_id as message_id,
        count(*) as replies,
        sum(case when sentiment = 'positive' then 1 else 0 end) as positive_replies,
        min(replied_at) as first_replied_at
    from {{ ref('int_replies_attributed') }}
    where attributed_message_id is not null
    group by tenant_id, attributed_message_id

),

{% if window_start %}
touched as (

    select tenant_id, message_id
    from {{ ref('stg_leadron__events') }}
    where message_id is not null
        and event_type in ('email_sent', 'email_bounce', 'email_open', 'link_click')
        and event_date >= {{ window_start }}
    union
    select coalesce(r.tenant_id, t.tenant_id), coalesce(r.message_id, t.message_id)
    from replies as r
    full outer join (
        select tenant_id, message_id, replies, positive_replies, first_replied_at
        from {{ this }}
        where replies > 0
    ) as t
        on r.tenant_id = t.tenant_id and r.message_id = t.message_id
    where r.replies is distinct from t.replies
        or r.positive_replies is distinct from t.positive_replies
        or r.first_replied_at is distinct from t.first_replied_at

),
{% endif %}

-- Both are cut to the touched messages first: each is read twice, and DuckDB materializes a CTE read twice
-- (every send and every message of the history, otherwise).
{%- for name, relation in [('sends', ref('int_email_sends')), ('dim_messages', ref('stg_leadron__messages'))] %}

{{ name }} as (

    select k.*
    from {{ relation }} as k
    {%- if window_start %}
    inner join touched
        on k.tenant_id = touched.tenant_id and k.message_id = touched.message_id
    {%- endif %}

),
{%- endfor %}

events as (

    select e.*
    from {{ ref('stg_leadron__events') }} as e
    {% if window_start %}
    inner join touched
        on e.tenant_id = touched.tenant_id and e.message_id = touched.message_id
    {% endif %}
    where e.message_id is not null
        and e.event_type in ('email_bounce', 'email_open', 'link_click')

),

engagement as (

    select
        tenant_id,
        message_id,
        sum(case when event_type = 'email_bounce' then 1 else 0 end) as bounce_events,
        sum(case when event_type = 'email_bounce' and bounce_type = 'hard' then 1 else 0 end) as hard_bounce_events,
        min(case when event_type = 'email_bounce' then occurred_at end) as first_bounced_at,
        sum(case when event_type = 'email_open' and not is_bot then 1 else 0 end) as human_opens,
        sum(case when event_type = 'email_open' and is_bot then 1 else 0 end) as bot_opens,
        min(case when event_type = 'email_open' and not is_bot then occurred_at end) as first_human_open_at,
        sum(case when event_type = 'link_click' and not is_bot then 1 else 0 end) as human_clicks,
        sum(case when event_type = 'link_click' and is_bot then 1 else 0 end) as bot_clicks,
        min(case when event_type = 'link_click' and not is_bot then occurred_at end) as first_human_click_at
    from events
    group by tenant_id, message_id

),

message_keys as (

    select tenant_id, message_id from sends
    union
    select tenant_id, message_id from dim_messages

),

messages as (

    select
        k.tenant_id,
        k.message_id,
        s.message_id is not null as has_send_event,
        coalesce(s.sent_at, d.sent_at) as sent_at,
        coalesce(s.lead_id, d.lead_id) as lead_id,
        coalesce(s.user_id, d.user_id) as user_id,
        coalesce(s.workflow_id, d.workflow_id) as workflow_id,
        coalesce(s.workflow_execution_id, d.workflow_execution_id) as workflow_execution_id,
        coalesce(s.step_number, d.step_number) as step_number
    from message_keys as k
    left join sends as s
        on k.tenant_id = s.tenant_id and k.message_id = s.message_id
    left join dim_messages as d
        on k.tenant_id = d.tenant_id and k.message_id = d.message_id

)

select
    m.tenant_id,
    m.message_id,
    m.lead_id,
    m.user_id,
    m.workflow_id,
    m.workflow_execution_id,
    m.step_number,
    m.sent_at,
    cast(m.sent_at as date) as send_date,
    m.has_send_event,
    m.has_send_event and coalesce(e.bounce_events, 0) > 0 as is_bounced,
    m.has_send_event and coalesce(e.hard_bounce_events, 0) > 0 as is_hard_bounce,
    m.has_send_event and coalesce(e.bounce_events, 0) > 0 and coalesce(e.hard_bounce_events, 0) = 0 as is_soft_bounce,
    m.has_send_event and coalesce(e.bounce_events, 0) = 0 as is_delivered,
    e.first_bounced_at,
    coalesce(e.human_opens, 0) as human_opens,
    coalesce(e.bot_opens, 0) as bot_opens,
    e.first_human_open_at,
    coalesce(e.human_clicks, 0) as human_clicks,
    coalesce(e.bot_clicks, 0) as bot_clicks,
    e.first_human_click_at,
    coalesce(r.replies, 0) as replies,
    coalesce(r.positive_replies, 0) as positive_replies,
    r.first_replied_at,
    -- The send day this message had before a second, earlier send moved it (kept until it moves again):
    -- downstream marts re-aggregate that day too, which may hold no other refreshed message.
    {% if window_start -%}
    case when prev.send_date <> cast(m.sent_at as date) then prev.send_date else prev.replaced_send_date end
    {%- else -%}
    cast(null as date)
    {%- endif %} as replaced_send_date,
    -- When this row was last derived (the dbt run's start): downstream incremental marts re-aggregate the
    -- send days of rows newer than what they last saw.
    {{ run_started_timestamp() }} as refreshed_at
from messages as m
left join engagement as e
    on m.tenant_id = e.tenant_id and m.message_id = e.message_id
left join replies as r
    on m.tenant_id = r.tenant_id and m.message_id = r.message_id
{% if window_start %}
left join {{ this }} as prev
    on m.tenant_id = prev.tenant_id and m.message_id = prev.message_id
{% endif %}
