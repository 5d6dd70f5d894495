-- The dashboard's headline numbers per tenant and UTC day: email performance by send day
-- (counts from mart_email_performance_daily, rates derived from them), distinct leads
-- contacted / engaged / replied by send day, and leads converted by conversion day.
--
-- Incremental: re-derives the (tenant, day) partitions whose int_messages rows were derived since this
-- model last read it (refreshed_at); conversions come from the leads dimension, whose new snapshots make
-- the run rebuild in full.

{{ config(**partition_overwrite(['tenant_id', 'kpi_date'], rederive={'rows': 'send_days', 'column': 'kpi_date'}, written={'column': 'refreshed_at', 'from': 'run_start'})) }}

with {% if is_incremental() %}changed_days as (

    {{ refreshed_send_days(this) }}

),

{% endif %}performance as (

    select
        p.tenant_id,
        p.send_date as kpi_date,
        sum(sent) as sent,
        sum(bounced) as bounced,
        sum(hard_bounced) as hard_bounced,
        sum(soft_bounced) as soft_bounced,
        sum(delivered) as delivered,
        sum(opens_total) as opens_total,
        sum(unique_opens) as unique_opens,
        sum(clicks_total) as clicks_total,
        sum(unique_clicks) as unique_clicks,
        sum(replied) as replied,
        sum(positive_replied) as positive_replied
    from {{ ref('mart_email_performance_daily') }} as p
    {{- only_changed_days('p', 'p.send_date') }}
    group by p.tenant_id, p.send_date

),

lead_reach as (

    -- Distinct leads over the whole day (a lead can appear in several rows of the performance mart).
    select
        m.tenant_id,
        m.send_date as kpi_date,
        count(distinct lead_id) as leads_contacted,
        count(distinct case when is_delivered and (human_opens > 0 or human_clicks > 0 or replies > 0)
                            then lead_id end) as leads_engaged,
        count(distinct case when is_delivered and replies > 0 then lead_id end) as leads_replied,
        max(refreshed_at) as refreshed_at
    from {{ ref('int_messages') }} as m
    {{- only_changed_days('m', 'm.send_date') }}
    where m.has_send_event
    group by m.tenant_id, m.send_date

),

conversions as (

    select l.tenant_id, cast(l.converted_at as date) as kpi_date, count(*) as leads_converted
    from {{ ref('stg_leadron__leads') }} as l
    {{- only_changed_days('l', 'cast(l.converted_at as date)') }}
    where l.converted_at is not null
    group by l.tenant_id, cast(l.converted_at as date)

),

days as (

    select tenant_id, kpi_date from performance
    union
    select tenant_id, kpi_date from conversions

)

select
    {{ surrogate_key(['d.tenant_id', 'd.kpi_date']) }} as kpi_key,
    d.tenant_id,
    d.kpi_date,
    coalesce(p.sent, 0) as sent,
    coalesce(p.bounced, 0) as bounced,
    coalesce(p.hard_bounced, 0) as hard_bounced,
    coalesce(p.soft_bounced, 0) as soft_bounced,
    coalesce(p.delivered, 0) as delivered,
    coalesce(p.opens_total, 0) as opens_total,
    coalesce(p.unique_opens, 0) as unique_opens,
    coalesce(p.clicks_total, 0) as clicks_total,
    coalesce(p.unique_clicks, 0) as unique_clicks,
    coalesce(p.replied, 0) as replied,
    coalesce(p.positive_replied, 0) as positive_replied,
    {{ safe_divide('coalesce(p.unique_opens, 0)', 'coalesce(p.delivered, 0)') }} as open_rate,
    {{ safe_divide('coalesce(p.unique_clicks, 0)', 'coalesce(p.delivered, 0)') }} as click_rate,
    {{ safe_divide('coalesce(p.unique_clicks, 0)', 'coalesce(p.unique_opens, 0)') }} as click_to_open_rate,
    {{ safe_divide('coalesce(p.replied, 0)', 'coalesce(p.delivered, 0)') }} as reply_rate,
    {{ safe_divide('coalesce(p.positive_replied, 0)', 'coalesce(p.replied, 0)') }} as positive_reply_rate,
    {{ safe_divide('coalesce(p.bounced, 0)', 'coalesce(p.sent, 0)') }} as bounce_rate,
    {{ safe_divide('coalesce(p.hard_bounced, 0)', 'coalesce(p.sent, 0)') }} as hard_bounce_rate,
    {{ safe_divide('coalesce(p.soft_bounced, 0)', 'coalesce(p.sent, 0)') }} as soft_bounce_rate,
    coalesce(r.leads_contacted, 0) as leads_contacted,
    coalesce(r.leads_engaged, 0) as leads_engaged,
    coalesce(r.leads_replied, 0) as leads_replied,
    {{ safe_divide('coalesce(r.leads_replied, 0)', 'coalesce(r.leads_contacted, 0)') }} as lead_reply_rate,
    coalesce(c.leads_converted, 0) as leads_converted,
    r.refreshed_at
from days as d
left join performance as p
    on d.tenant_id = p.tenant_id and d.kpi_date = p.kpi_date
left join lead_reach as r
    on d.tenant_id = r.tenant_id and d.kpi_date = r.kpi_date
left join conversions as c
    on d.tenant_id = c.tenant_id and d.kpi_date = c.kpi_date
