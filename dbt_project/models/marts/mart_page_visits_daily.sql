-- Page visits per tenant, page URL and UTC day.

with visits as (

    select * from {{ ref('stg_leadron__events') }}
    where event_type = 'page_visit'

)

select
    {{ surrogate_key(['tenant_id', 'url', 'event_date']) }} as page_day_key,
    tenant_id,
    url as page_url,
    event_date as visit_date,
    count(*) as visits,
    count(distinct lead_id) as unique_leads
from visits
group by tenant_id, url, event_date
