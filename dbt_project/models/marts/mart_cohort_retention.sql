-- Weekly cohorts of leads by their first email_sent (METRICS.md): for week offsets 0..12, the
-- cohort's leads with a human engagement in that week and those converted by its end.
-- Only weeks that have fully elapsed by the as-of time are reported. Built from the lead-week counts
-- (int_lead_weeks), not from every event; cohort and activity are joined only where a lead was active.

{% set max_offset = 12 %}

with lead_weeks as (

    select * from {{ ref('int_lead_weeks') }}

),

cohorts as (

    select tenant_id, lead_id, min(week_start) as cohort_week
    from lead_weeks
    where sends > 0
    group by tenant_id, lead_id

),

offsets as (

    {% for k in range(max_offset + 1) %}
    select {{ k }} as week_offset{% if not loop.last %} union all{% endif %}
    {% endfor %}

),

cohort_weeks as (

    -- Every elapsed week offset of every cohort, with its end.
    select
        c.tenant_id,
        c.cohort_week,
        o.week_offset,
        cast({{ dbt.dateadd('day', '7 * (o.week_offset + 1)', 'c.cohort_week') }} as date) as week_end,
        count(*) as cohort_size
    from cohorts as c
    cross join offsets as o
    where cast({{ dbt.dateadd('day', '7 * (o.week_offset + 1)', 'c.cohort_week') }} as date)
        <= cast({{ as_of_timestamp() }} as date)
    group by c.tenant_id, c.cohort_week, o.week_offset

),

active as (

    select
        c.tenant_id,
        c.cohort_week,
        cast({{ dbt.datediff('c.cohort_week', 'w.week_start', 'day') }} / 7 as {{ dbt.type_int() }}) as week_offset,
        count(*) as active_leads
    from cohorts as c
    inner join lead_weeks as w
        on c.tenant_id = w.tenant_id
        and c.lead_id = w.lead_id
        and w.week_start >= c.cohort_week
        and w.week_start < cast({{ dbt.dateadd('day', 7 * (max_offset + 1), 'c.cohort_week') }} as date)
    where w.human_engagements > 0
    group by 1, 2, 3

),

converted as (

    -- Only converted leads meet the offsets: a lead counts from the first week whose end is after its conversion.
    select w.tenant_id, w.cohort_week, w.week_offset, count(*) as converted_leads
    from cohorts as c
    inner join {{ ref('stg_leadron__leads') }} as l
        on c.tenant_id = l.tenant_id and c.lead_id = l.lead_id
    inner join cohort_weeks as w
        on c.tenant_id = w.tenant_id
        and c.cohort_week = w.cohort_week
        and l.converted_at < w.week_end
    where l.converted_at is not null
    group by 1, 2, 3

)

select
    {{ surrogate_key(['w.tenant_id', 'w.cohort_week', 'w.week_offset']) }} as cohort_key,
    w.tenant_id,
    w.cohort_week,
    w.week_offset,
    w.cohort_size,
    coalesce(a.active_leads, 0) as active_leads,
    {{ safe_divide('coalesce(a.active_leads, 0)', 'w.cohort_size') }} as retention_rate,
    coalesce(v.converted_leads, 0) as converted_leads,
    {{ safe_divide('coalesce(v.converted_leads, 0)', 'w.cohort_size') }} as conversion_rate
from cohort_weeks as w
left join active as a
    on w.tenant_id = a.tenant_id and w.cohort_week = a.cohort_week and w.week_offset = a.week_offset
left join converted as v
    on w.tenant_id = v.tenant_id and w.cohort_week = v.cohort_week and w.week_offset = v.week_offset
