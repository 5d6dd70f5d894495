-- One row per lead and week (Monday, UTC) with a send or a human engagement: the lead's sends and human
-- engagements (open, click, reply, form submission, page visit) that week. The cohort mart reads it
-- instead of every event.
--
-- Incremental (with a run window, see event_window_start): the weeks from the one holding the window's
-- first day are recounted whole (deleted first by the pre-hook); earlier weeks are kept.

{{ config(**partition_overwrite(['tenant_id', 'week_start'], rederive={'rows': 'window_weeks', 'column': 'week_start'}, written={'column': 'week_start', 'from': 'window_week'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}

with events as (

    select * from {{ ref('stg_leadron__events') }}
    where lead_id is not null
        and (event_type = 'email_sent'
            or (not is_bot and event_type in ('email_open', 'link_click', 'email_reply', 'form_submission', 'page_visit')))
    {% if window_start %}
        and event_date >= {{ week_start(window_start) }}
    {% endif %}

)

select
    tenant_id,
    lead_id,
    {{ week_start('occurred_at') }} as week_start,
    sum(case when event_type = 'email_sent' then 1 else 0 end) as sends,
    sum(case when event_type = 'email_sent' then 0 else 1 end) as human_engagements
from events
group by tenant_id, lead_id, {{ week_start('occurred_at') }}
