-- Page visits per tenant, page URL and UTC day.
-- Incremental (with a run window, see event_window_start): the window's days are recounted whole.

{{ config(**partition_overwrite(['tenant_id', 'visit_date'], written={'column': 'visit_date', 'from': 'window_day'})) }}

{%- set window_start = event_window_start() if is_incremental() else '' %}

with visits as (

    select * from {{ ref('stg_leadron__events') }}
    where event_type = 'page_visit'
    {% if window_start %}
        and event_date >= {{ window_start }}
    {% endif %}

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
