-- Per lead, from all of its events: counts by type, first and last activity, last human engagement, and the
-- engagement score decayed to that last human engagement (`decayed_to_last_engagement`): the lead engagement
-- mart decays it once more to the as-of time (0.5^(a+b) = 0.5^a * 0.5^b), so a new day re-derives only the
-- leads with an event in the run's window. No as-of filter here: the mart handles a lead with events after it.
{{ config(**partition_overwrite(['tenant_id', 'lead_id'], written={'column': 'refreshed_at', 'from': 'run_start'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}

with events as (

    select * from {{ ref('stg_leadron__events') }}
    where lead_id is not null

),

{% if window_start %}
touched as (

    select distinct tenant_id, lead_id
    from events
    where event_date >= {{ window_start }}

),

{% endif %}
lead_events as (

    select
        e.*,
        {{ engagement_weight('e') }} as engagement_weight
    from events as e
    {%- if window_start %}
    inner join touched as t
        on e.tenant_id = t.tenant_id and e.lead_id = t.lead_id
    {%- endif %}

),

per_lead as (

    select
        tenant_id,
        lead_id,
{{ engagement_counts() }},
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at,
        max(case when engagement_weight > 0 then occurred_at end) as last_human_engagement_at
    from lead_events
    group by tenant_id, lead_id

)

select
    p.*,
    d.decayed_to_last_engagement,
    {{ run_started_timestamp() }} as refreshed_at
from per_lead as p
left join (
    select e.tenant_id, e.lead_id, {{ decayed_engagement('e.engagement_weight', 'l.last_human_engagement_at') }}
        as decayed_to_last_engagement
    from lead_events as e
    inner join per_lead as l
        on e.tenant_id = l.tenant_id and e.lead_id = l.lead_id
    group by e.tenant_id, e.lead_id
) as d
    on p.tenant_id = d.tenant_id and p.lead_id = d.lead_id
