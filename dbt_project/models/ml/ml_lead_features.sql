-- Lead-scoring features (METRICS.md "Lead scores"): one row per open lead per snapshot date.
-- Snapshots (macros/ml_snapshots.sql) are the as-of day and the latest grid days before it, every
-- `ml_snapshot_every_days` from 1970-01-01 (`ml_snapshot_count` in all), at 00:00 UTC. Features use only events
-- that happened before the snapshot; the label (converted within 90 days after it) only what came after, and is
-- null while those 90 days have not elapsed. A lead is in a snapshot when it was created before it and had not
-- converted before it.
--
-- Incremental: a grid snapshot's rows are kept once derived; a run derives the snapshots ml_snapshots_to_derive
-- names and drops the dates that are no longer snapshots.

{{ config(**partition_overwrite(['tenant_id', 'snapshot_date'], rederive={'rows': 'ml_snapshots', 'column': 'snapshot_date'}, written={'column': 'snapshot_date', 'from': 'window_day'})) }}

{% set label_days = var('ml_label_days', 90) %}
{#- Decayed weights are whole billionths (bigint, see int_lead_days). -#}
{% set nano = 1000000000.0 %}

with snapshots as (

    {% if is_incremental() -%}
    {{ ml_snapshots_to_derive(this) }}
    {%- else -%}
    {{ ml_snapshot_dates() }}
    {%- endif %}

),

-- Per lead and event day: counts, and the engagement weights (in billionths) already decayed to the end of that
-- day (int_lead_days), so that a snapshot only has to decay each day's sum once more (0.5^(a+b) = 0.5^a * 0.5^b).
lead_days as (

    select * from {{ ref('int_lead_days') }}

),

population as (

    select
        l.tenant_id,
        l.lead_id,
        l.lead_source,
        l.created_at,
        l.converted_at,
        s.snapshot_date,
        cast(s.snapshot_date as {{ dbt.type_timestamp() }}) as snapshot_at
    from {{ ref('stg_leadron__leads') }} as l
    cross join snapshots as s
    where l.created_at < cast(s.snapshot_date as {{ dbt.type_timestamp() }})
        and (l.converted_at is null or l.converted_at >= cast(s.snapshot_date as {{ dbt.type_timestamp() }}))

),

history as (

    select
        p.tenant_id,
        p.lead_id,
        p.snapshot_date,
        sum(d.sends) as sends_total,
        sum(case when d.event_date >= {{ dbt.dateadd('day', -30, 'p.snapshot_date') }} then d.sends else 0 end) as sends_30d,
        sum(d.opens) as opens_total,
        sum(case when d.event_date >= {{ dbt.dateadd('day', -30, 'p.snapshot_date') }} then d.opens else 0 end) as opens_30d,
        sum(d.clicks) as clicks_total,
        sum(case when d.event_date >= {{ dbt.dateadd('day', -30, 'p.snapshot_date') }} then d.clicks else 0 end) as clicks_30d,
        sum(d.replies) as replies_total,
        sum(d.positive_replies) as positive_replies_total,
        sum(d.bounces) as bounces_total,
        sum(d.form_submissions) as form_submissions_total,
        sum(d.page_visits) as page_visits_total,
        sum(case when d.event_date >= {{ dbt.dateadd('day', -30, 'p.snapshot_date') }} then d.page_visits else 0 end) as page_visits_30d,
        {% for name, _, _ in engagement_weights() %}
        sum(cast(round(d.decayed_{{ name }} * {{ engagement_decay(dbt.dateadd('day', 1, 'd.event_date'), 'p.snapshot_at') }}, 0)
                 as {{ dbt.type_bigint() }})) as score_{{ name }},
        {% endfor %}
        min(d.first_event_at) as first_event_at,
        max(d.last_send_at) as last_send_at,
        max(d.last_reply_at) as last_reply_at,
        max(d.last_human_engagement_at) as last_human_engagement_at
    from population as p
    inner join lead_days as d
        on p.tenant_id = d.tenant_id
        and p.lead_id = d.lead_id
        and d.event_date < p.snapshot_date
    group by p.tenant_id, p.lead_id, p.snapshot_date

)

select
    {{ surrogate_key(['p.tenant_id', 'p.lead_id', 'p.snapshot_date']) }} as feature_key,
    p.tenant_id,
    p.lead_id,
    p.snapshot_date,
    p.lead_source,
    {{ dbt.datediff('p.created_at', 'p.snapshot_at', 'day') }} as lead_age_days,
    coalesce(h.sends_total, 0) as sends_total,
    coalesce(h.sends_30d, 0) as sends_30d,
    coalesce(h.opens_total, 0) as opens_total,
    coalesce(h.opens_30d, 0) as opens_30d,
    coalesce(h.clicks_total, 0) as clicks_total,
    coalesce(h.clicks_30d, 0) as clicks_30d,
    coalesce(h.replies_total, 0) as replies_total,
    coalesce(h.positive_replies_total, 0) as positive_replies_total,
    coalesce(h.bounces_total, 0) as bounces_total,
    coalesce(h.form_submissions_total, 0) as form_submissions_total,
    coalesce(h.page_visits_total, 0) as page_visits_total,
    coalesce(h.page_visits_30d, 0) as page_visits_30d,
    {{ dbt.datediff('h.first_event_at', 'p.snapshot_at', 'day') }} as days_since_first_touch,
    {{ dbt.datediff('h.last_send_at', 'p.snapshot_at', 'day') }} as days_since_last_send,
    {{ dbt.datediff('h.last_reply_at', 'p.snapshot_at', 'day') }} as days_since_last_reply,
    {{ dbt.datediff('h.last_human_engagement_at', 'p.snapshot_at', 'day') }} as days_since_last_engagement,
    {% for name, _, _ in engagement_weights() %}
    coalesce(h.score_{{ name }}, 0) / {{ nano }} as score_{{ name }},
    {% endfor %}
    (coalesce(h.score_open, 0) + coalesce(h.score_click, 0) + coalesce(h.score_visit, 0)
        + coalesce(h.score_form, 0) + coalesce(h.score_reply, 0)) / {{ nano }} as engagement_score,
    case
        when {{ dbt.dateadd('day', label_days, 'p.snapshot_date') }} > cast({{ as_of_timestamp() }} as date) then null
        when p.converted_at < {{ dbt.dateadd('day', label_days, 'p.snapshot_at') }} then 1
        else 0
    end as converted_within_90d
from population as p
left join history as h
    on p.tenant_id = h.tenant_id
    and p.lead_id = h.lead_id
    and p.snapshot_date = h.snapshot_date
