-- One row per lead: human counts by type, first and last activity, last human engagement,
-- and the engagement score of METRICS.md with its tier, as of the run's as-of time.

with events as (

    select * from {{ ref('stg_leadron__events') }}
    where lead_id is not null

),

as_of as (

    select {{ as_of_timestamp() }} as as_of_at

),

weighted as (

    select
        e.*,
        a.as_of_at,
        {{ engagement_weight('e', 'a.as_of_at') }} as engagement_weight
    from events as e
    cross join as_of as a

),

per_lead as (

    select
        tenant_id,
        lead_id,
{{ engagement_counts() }},
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at,
        max(case when engagement_weight > 0 then occurred_at end) as last_human_engagement_at,
        sum(case when engagement_weight > 0
                 then engagement_weight * power(0.5, {{ millis_between('occurred_at', 'as_of_at') }}
                                                     / (86400000.0 * 14))
                 else 0 end) as engagement_score,
        max(as_of_at) as scored_as_of
    from weighted
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
        coalesce(p.scored_as_of, (select as_of_at from as_of)) as scored_as_of
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
