-- One row per lead and event day (UTC): the lead's engagement counts, its human engagement weights already
-- decayed to the end of that day, and its first and last events. The lead engagement mart and the lead
-- features read it instead of every event: a day's decay to any later time is one more factor,
-- 0.5^(a+b) = 0.5^a * 0.5^b, so a day's row never changes once the day is landed.
--
-- Incremental (with a run window, see event_window_start): the window's days are recounted whole.

{{ config(**partition_overwrite(['tenant_id', 'event_date'], written={'column': 'event_date', 'from': 'window_day'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}
{#- The lead features sum decayed weights as whole billionths (bigint): integer sums do not depend on the order
    a parallel aggregate adds them in, so the same events always give the same features, bit for bit. -#}
{% set nano = 1000000000.0 %}

with events as (

    select
        *,
        {{ dbt.dateadd('day', 1, 'event_date') }} as day_end,
        {{ engagement_decay('occurred_at', dbt.dateadd('day', 1, 'event_date')) }} as decay_to_day_end
    from {{ ref('stg_leadron__events') }}
    where lead_id is not null
    {% if window_start %}
        and event_date >= {{ window_start }}
    {% endif %}

)

select
    tenant_id,
    lead_id,
    event_date,
{{ engagement_counts() }},
    sum(case when event_type = 'email_reply' and sentiment = 'positive' then 1 else 0 end) as positive_replies,
    {% for name, event_type, weight in engagement_weights() %}
    sum(case when event_type = '{{ event_type }}' and not is_bot
             then cast(round({{ weight }} * decay_to_day_end * {{ nano }}, 0) as {{ dbt.type_bigint() }})
             else 0 end) as decayed_{{ name }},
    {% endfor %}
    sum({{ engagement_weight('events', 'day_end') }} * decay_to_day_end) as engagement_at_day_end,
    min(occurred_at) as first_event_at,
    max(occurred_at) as last_event_at,
    max(case when event_type = 'email_sent' then occurred_at end) as last_send_at,
    max(case when event_type = 'email_reply' then occurred_at end) as last_reply_at,
    max(case when {{ engagement_weight('events', 'day_end') }} > 0 then occurred_at end) as last_human_engagement_at
from events
group by tenant_id, lead_id, event_date
