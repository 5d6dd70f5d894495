-- One row per lead: human counts by type, first and last activity, last human engagement,
-- and the engagement score of METRICS.md with its tier, as of the run's as-of time.
-- int_lead_activity holds each lead's score decayed to its last human engagement; here it is decayed to the
-- as-of time. A lead with an event after the as-of time (the contract takes timestamps up to 24 h ahead) gets
-- its last engagement and score from its events up to that time instead.

with activity as (

    select * from {{ ref('int_lead_activity') }}

),

as_of as (

    select {{ as_of_timestamp() }} as as_of_at

),

ahead_of_as_of as (

    select e.*, {{ engagement_weight('e', 'a.as_of_at') }} as engagement_weight, a.as_of_at
    from {{ ref('stg_leadron__events') }} as e
    cross join as_of as a
    inner join activity as l
        on e.tenant_id = l.tenant_id and e.lead_id = l.lead_id and l.last_activity_at > a.as_of_at

),

capped as (

    select
        tenant_id,
        lead_id,
        max(case when engagement_weight > 0 then occurred_at end) as last_human_engagement_at,
        {{ decayed_engagement('engagement_weight', 'as_of_at') }} as engagement_score
    from ahead_of_as_of
    group by tenant_id, lead_id

),

per_lead as (

    select
        l.tenant_id,
        l.lead_id,
        l.sends,
        l.opens,
        l.clicks,
        l.replies,
        l.bounces,
        l.form_submissions,
        l.page_visits,
        l.first_activity_at,
        l.last_activity_at,
        case when c.lead_id is not null then c.last_human_engagement_at else l.last_human_engagement_at end
            as last_human_engagement_at,
        case
            when c.lead_id is not null then c.engagement_score
            when l.last_human_engagement_at is null then 0
            else l.decayed_to_last_engagement
                 * power(0.5, {{ millis_between('l.last_human_engagement_at', 'a.as_of_at') }} / (86400000.0 * 14))
        end as engagement_score
    from activity as l
    cross join as_of as a
    left join capped as c
        on l.tenant_id = c.tenant_id and l.lead_id = c.lead_id

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
