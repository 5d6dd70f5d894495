-- Activity view: events by the UTC day they happened (not by send day), all and human only.
-- Incremental (with a run window, see event_window_start): the window's days are recounted whole.

{{ config(**partition_overwrite(['tenant_id', 'event_date'], written={'column': 'event_date', 'from': 'window_day'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}

with events as (

    select * from {{ ref('stg_leadron__events') }}
    {% if window_start %}
    where event_date >= {{ window_start }}
    {% endif %}

)

select
    {{ surrogate_key(['tenant_id', 'event_date', 'event_type']) }} as activity_key,
    tenant_id,
    event_date,
    event_type,
    count(*) as events,
    sum(case when is_bot then 0 else 1 end) as human_events,
    sum(case when is_bot then 1 else 0 end) as bot_events,
    count(distinct lead_id) as unique_leads
from events
group by tenant_id, event_date, event_type
