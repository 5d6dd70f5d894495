-- The event grain readers need: one row per kept event (deduplicated, bot-flagged), with the message's
-- workflow, step and rep, the rep's team at the event's time and the lead's source. The read API's
-- timelines, form-submission and page-visit lists, custom funnels and the real-time KPIs read it from
-- the published copy. No personal data: IP, user agent and free properties stay in raw.

{{ config(**partition_overwrite(['tenant_id', 'event_id'], written={'column': 'event_date', 'from': 'window_day'})) }}

-- Incremental like its staging model: a run re-derives the events from event_window_start() on (the days
-- whose staging rows that run re-derived) and keeps the rest. An event takes its message's attributes
-- from the message's send, which happens before it, so a late send is always in the same window as the
-- events it explains. A dimension edit that rewrites history (a rep's past team, a lead's source) needs a
-- full refresh (`leadron run --full-refresh`).

with events as (

    select * from {{ ref('stg_leadron__events') }}
    {% if is_incremental() %}
    where event_date >= {{ event_window_start(this) }}
    {% endif %}

),

messages as (

    select tenant_id, message_id, workflow_id, step_number, user_id
    from {{ ref('int_messages') }}

),

teams as (

    select * from {{ ref('int_user_team_history') }}

),

leads as (

    select tenant_id, lead_id, lead_source
    from {{ ref('stg_leadron__leads') }}

)

select
    e.tenant_id,
    e.event_id,
    e.event_type,
    e.occurred_at,
    e.event_date,
    e.lead_id,
    e.message_id,
    e.workflow_execution_id,
    m.workflow_id,
    m.step_number,
    m.user_id,
    t.team_id,
    l.lead_source,
    e.url,
    e.form_id,
    e.bounce_type,
    e.sentiment,
    e.is_bot,
    e.bot_reason,
    e.received_at
from events as e
left join messages as m
    on e.tenant_id = m.tenant_id
    and e.message_id = m.message_id
left join teams as t
    on m.tenant_id = t.tenant_id
    and m.user_id = t.user_id
    and e.occurred_at >= t.valid_from
    and (t.valid_to is null or e.occurred_at < t.valid_to)
left join leads as l
    on e.tenant_id = l.tenant_id
    and e.lead_id = l.lead_id
-- Stored by tenant and lead: a lead's timeline reads a few row groups (min/max pruning), not the table.
order by e.tenant_id, e.lead_id, e.occurred_at, e.event_id
