-- Form submissions per tenant, form and UTC day, with the leads that converted afterwards.

with submissions as (

    select * from {{ ref('stg_leadron__events') }}
    where event_type = 'form_submission'

),

leads as (

    select tenant_id, lead_id, converted_at from {{ ref('stg_leadron__leads') }}

),

first_of_day as (

    select tenant_id, form_id, event_date, lead_id, min(occurred_at) as first_submitted_at
    from submissions
    where lead_id is not null
    group by tenant_id, form_id, event_date, lead_id

),

converted as (

    select f.tenant_id, f.form_id, f.event_date, count(*) as leads_converted_afterwards
    from first_of_day as f
    inner join leads as l
        on f.tenant_id = l.tenant_id
        and f.lead_id = l.lead_id
    where l.converted_at >= f.first_submitted_at
    group by f.tenant_id, f.form_id, f.event_date

),

daily as (

    select
        tenant_id,
        form_id,
        event_date,
        count(*) as submissions,
        count(distinct lead_id) as unique_leads
    from submissions
    group by tenant_id, form_id, event_date

)

select
    {{ surrogate_key(['d.tenant_id', 'd.form_id', 'd.event_date']) }} as form_day_key,
    d.tenant_id,
    d.form_id,
    d.event_date as submission_date,
    d.submissions,
    d.unique_leads,
    coalesce(c.leads_converted_afterwards, 0) as leads_converted_afterwards
from daily as d
left join converted as c
    on d.tenant_id = c.tenant_id
    and d.event_date = c.event_date
    and (d.form_id = c.form_id or (d.form_id is null and c.form_id is null))
