-- Weekly cohorts of leads by their first email_sent (METRICS.md): for week offsets 0..12, the
-- cohort's leads with a human engagement in that week and those converted by its end.
-- Only weeks that have fully elapsed by the as-of time are reported.

{% set max_offset = 12 %}

with events as (

    select * from {{ ref('stg_leadron__events') }}
    where lead_id is not null

),

cohorts as (

    select tenant_id, lead_id, cast({{ dbt.date_trunc('week', 'min(occurred_at)') }} as date) as cohort_week
    from events
    where event_type = 'email_sent'
    group by tenant_id, lead_id

),

offsets as (

    {% for k in range(max_offset + 1) %}
    select {{ k }} as week_offset{% if not loop.last %} union all{% endif %}
    {% endfor %}

),

engagement_weeks as (

    select distinct
        e.tenant_id,
        e.lead_id,
        cast({{ dbt.date_trunc('week', 'e.occurred_at') }} as date) as active_week
    from events as e
    where not e.is_bot
        and e.event_type in ('email_open', 'link_click', 'email_reply', 'form_submission', 'page_visit')

),

lead_weeks as (

    select
        c.tenant_id,
        c.lead_id,
        c.cohort_week,
        o.week_offset,
        cast({{ dbt.dateadd('day', '7 * o.week_offset', 'c.cohort_week') }} as date) as week_start,
        cast({{ dbt.dateadd('day', '7 * (o.week_offset + 1)', 'c.cohort_week') }} as date) as week_end
    from cohorts as c
    cross join offsets as o

),

flags as (

    select
        w.tenant_id,
        w.cohort_week,
        w.week_offset,
        w.week_end,
        w.lead_id,
        case when a.lead_id is not null then 1 else 0 end as is_active,
        case when l.converted_at < w.week_end then 1 else 0 end as is_converted
    from lead_weeks as w
    left join engagement_weeks as a
        on w.tenant_id = a.tenant_id and w.lead_id = a.lead_id and a.active_week = w.week_start
    left join {{ ref('stg_leadron__leads') }} as l
        on w.tenant_id = l.tenant_id and w.lead_id = l.lead_id
    where w.week_end <= cast({{ as_of_timestamp() }} as date)

)

select
    {{ surrogate_key(['tenant_id', 'cohort_week', 'week_offset']) }} as cohort_key,
    tenant_id,
    cohort_week,
    week_offset,
    count(*) as cohort_size,
    sum(is_active) as active_leads,
    {{ safe_divide('sum(is_active)', 'count(*)') }} as retention_rate,
    sum(is_converted) as converted_leads,
    {{ safe_divide('sum(is_converted)', 'count(*)') }} as conversion_rate
from flags
group by tenant_id, cohort_week, week_offset
