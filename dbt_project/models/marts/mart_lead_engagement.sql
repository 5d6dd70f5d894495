-- One row per lead: human counts by type, first and last activity, last human engagement,
-- and the engagement score of METRICS.md with its tier, as of the run's as-of time.

with as_of as (

    select
        {{ as_of_timestamp() }} as as_of_at,
        {{ as_of_date() }} as as_of_date

),

-- Days before the as-of day hold only events at or before the as-of time: each day's weights, already decayed
-- to the end of that day, decay once more to the as-of time.
closed_days as (

    select
        d.tenant_id,
        d.lead_id,
        d.sends, d.opens, d.clicks, d.replies, d.bounces, d.form_submissions, d.page_visits,
        d.first_event_at as first_activity_at,
        d.last_event_at as last_activity_at,
        d.last_human_engagement_at,
        d.engagement_at_day_end
            * {{ engagement_decay(dbt.dateadd('day', 1, 'd.event_date'), 'a.as_of_at') }}
            as engagement_score
    from {{ ref('int_lead_days') }} as d
    cross join as_of as a
    where d.event_date < a.as_of_date

),

-- The as-of day and any later day (an as-of time in the past) from the events: the weight of an event after
-- the as-of time is 0, though it still counts.
open_days as (

    select
        e.tenant_id,
        e.lead_id,
{{ engagement_counts() }},
        min(e.occurred_at) as first_activity_at,
        max(e.occurred_at) as last_activity_at,
        max(case when {{ engagement_weight('e', 'a.as_of_at') }} > 0 then e.occurred_at end) as last_human_engagement_at,
        sum({{ engagement_weight('e', 'a.as_of_at') }}
            * {{ engagement_decay('e.occurred_at', 'a.as_of_at') }}) as engagement_score
    from {{ ref('stg_leadron__events') }} as e
    cross join as_of as a
    where e.lead_id is not null and e.event_date >= a.as_of_date
    group by e.tenant_id, e.lead_id

),

per_lead as (

    select
        tenant_id,
        lead_id,
        sum(sends) as sends,
        sum(opens) as opens,
        sum(clicks) as clicks,
        sum(replies) as replies,
        sum(bounces) as bounces,
        sum(form_submissions) as form_submissions,
        sum(page_visits) as page_visits,
        min(first_activity_at) as first_activity_at,
        max(last_activity_at) as last_activity_at,
        max(last_human_engagement_at) as last_human_engagement_at,
        sum(engagement_score) as engagement_score
    from (
        select * from closed_days
        union all
        select * from open_days
    ) as days
    group by tenant_id, lead_id

),

lead_keys as (

    select tenant_id, lead_id from {{ ref('stg_leadron__leads') }}
    union
    select tenant_id, lead_id from per_lead

),

scored as (

    select
        k.tenant_id,
        k.lead_id,
        l.lead_source,
        l.owner_user_id,
        l.lead_status,
        l.converted_at,
        coalesce(p.sends, 0) as sends,
        coalesce(p.opens, 0) as opens,
        coalesce(p.clicks, 0) as clicks,
        coalesce(p.replies, 0) as replies,
        coalesce(p.bounces, 0) as bounces,
        coalesce(p.form_submissions, 0) as form_submissions,
        coalesce(p.page_visits, 0) as page_visits,
        p.first_activity_at,
        p.last_activity_at,
        p.last_human_engagement_at,
        coalesce(p.engagement_score, 0) as engagement_score,
        (select as_of_at from as_of) as scored_as_of
    from lead_keys as k
    left join {{ ref('stg_leadron__leads') }} as l
        on k.tenant_id = l.tenant_id and k.lead_id = l.lead_id
    left join per_lead as p
        on k.tenant_id = p.tenant_id and k.lead_id = p.lead_id

)

select
    scored.*,
    case ntile(4) over (partition by tenant_id order by engagement_score, lead_id)
        when 4 then 'hot'
        when 3 then 'warm'
        else 'cold'
    end as engagement_tier
from scored
