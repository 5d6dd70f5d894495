-- Every reply with the message it is attributed to and the rule that attributed it
-- (METRICS.md): its messageId when that message is known; else the latest send to the
-- same lead in the same workflow execution before the reply; else the latest send to
-- that lead in the 30 days before it; else unattributed (kept, not dropped).
--
-- Incremental (with a run window, see event_window_start): replies of the window are re-attributed, the
-- others kept. A send can only explain a reply after it, so a late send is in the window of every reply
-- it can take.

{{ config(**partition_overwrite(['tenant_id', 'event_id'], written={'column': 'replied_at', 'from': 'window_day'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}

with replies as (

    select * from {{ ref('stg_leadron__events') }}
    where event_type = 'email_reply'
    {% if window_start %}
        and event_date >= {{ window_start }}
    {% endif %}

),

sends as (

    select * from {{ ref('int_email_sends') }}

),

reply_messages as (

    select distinct tenant_id, message_id from replies where message_id is not null

),

-- The replies' message ids that a send or the messages dimension knows. Each side is cut to the replies'
-- ids before the union: deduplicating every known message to keep a few dominated an incremental run.
known_messages as (

    {%- for side in ['sends', ref('stg_leadron__messages')] %}
    select k.tenant_id, k.message_id
    from {{ side }} as k
    inner join reply_messages as m
        on k.tenant_id = m.tenant_id and k.message_id = m.message_id
    {{ 'union' if not loop.last }}
    {%- endfor %}

),

by_message_id as (

    select r.tenant_id, r.event_id, r.message_id as attributed_message_id
    from replies as r
    inner join known_messages as k
        on r.tenant_id = k.tenant_id
        and r.message_id = k.message_id

),

by_execution as (

    {{ latest_send_before_reply('replies', 'sends', 'r.workflow_execution_id = s.workflow_execution_id') }}

),

by_lead_recent_send as (

    {{ latest_send_before_reply('replies', 'sends',
        's.sent_at >= ' ~ dbt.dateadd('day', -1 * var('reply_attribution_days'), 'r.occurred_at')) }}

)

select
    r.tenant_id,
    r.event_id,
    r.lead_id,
    r.message_id as reply_message_id,
    r.workflow_execution_id,
    r.occurred_at as replied_at,
    r.sentiment,
    coalesce(m.attributed_message_id, x.attributed_message_id, l.attributed_message_id) as attributed_message_id,
    case
        when m.attributed_message_id is not null then 'message_id'
        when x.attributed_message_id is not null then 'workflow_execution'
        when l.attributed_message_id is not null then 'lead_recent_send'
        else 'unattributed'
    end as attribution_rule
from replies as r
left join by_message_id as m
    on r.tenant_id = m.tenant_id and r.event_id = m.event_id
left join by_execution as x
    on r.tenant_id = x.tenant_id and r.event_id = x.event_id
left join by_lead_recent_send as l
    on r.tenant_id = l.tenant_id and r.event_id = l.event_id
