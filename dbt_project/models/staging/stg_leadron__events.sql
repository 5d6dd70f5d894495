{{ config(
    post_hook="{{ export_for_warehouse() }}",
    **partition_overwrite(['tenant_id', 'event_id'], written={'column': 'event_date', 'from': 'window_day'}),
) }}

-- Typed events, deduplicated on (tenant_id, event_id) across days (first received wins),
-- with the bot flag of METRICS.md and the reason for it. The personal fields (user agent, IP, free
-- properties) stay in raw: no model reads them, and the user agent serves only the bot rule here.
--
-- Incremental: a run re-derives every event day from the window's first day (var min_date, else the
-- environment's LEADRON_DBT_MIN_DATE that a Dagster run sets from its partition range; else the newest
-- day already built) minus var lookback_days (default 3).
-- Earlier days are kept; an event id already kept from an earlier day stays unless this copy was
-- received first (then delete+insert replaces it), so the result equals a full refresh.

{% if is_incremental() %}
    {%- set scan_start = event_window_start(this) -%}
{% endif %}

with source as (

    select * from {{ source('leadron_raw', 'events') }}
    {% if is_incremental() %}
    -- one more day for sends: an open just after scan_start may belong to a send just before it
    where event_date >= {{ dbt.dateadd('day', -1, scan_start) }}
    {% endif %}

),

renamed as (

    select
        tenant_id,
        event_id,
        event_type,
        lead_id,
        message_id,
        workflow_execution_id,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(event_date as date) as event_date,
        user_id,
        workflow_id,
        cast(step_number as {{ dbt.type_int() }}) as step_number,
        url,
        form_id,
        case when event_type = 'email_bounce' then coalesce(bounce_type, 'hard') end as bounce_type,
        user_agent,
        coalesce(is_bot, false) as provider_bot_flag,
        sentiment,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
        batch_id,
        source as load_source,
        source_line

    from source

),

deduplicated as (

    select *
    from (
        select
            renamed.*,
            row_number() over (
                partition by tenant_id, event_id
                order by received_at, batch_id, load_source, source_line
            ) as arrival_rank
        from renamed
    ) as ranked
    where arrival_rank = 1

),

kept as (

    select d.*
    from deduplicated as d
    {% if is_incremental() %}
    where d.event_date >= {{ scan_start }}
        and not exists (
            select 1
            from {{ this }} as t
            where t.tenant_id = d.tenant_id
                and t.event_id = d.event_id
                and t.event_date < {{ scan_start }}
                and (t.received_at < d.received_at
                    or (t.received_at = d.received_at and t.batch_id < d.batch_id)
                    or (t.received_at = d.received_at and t.batch_id = d.batch_id
                        and (t.load_source < d.load_source
                            or (t.load_source = d.load_source and t.source_line < d.source_line))))
        )
    {% endif %}

),

first_sends as (

    select tenant_id, message_id, min(occurred_at) as sent_at
    from deduplicated
    where event_type = 'email_sent' and message_id is not null
    group by tenant_id, message_id

),

scanner_matches as (

    select distinct e.tenant_id, e.event_id
    from kept as e
    inner join {{ ref('scanner_user_agents') }} as scanners
        on {{ contains_ci('e.user_agent', 'scanners.pattern') }}
    where e.event_type in ('email_open', 'link_click')

),

flagged as (

    select
        e.*,
        case
            when e.event_type not in ('email_open', 'link_click') then null
            when e.provider_bot_flag then 'provider_flag'
            when scanner_matches.event_id is not null then 'scanner_user_agent'
            when e.occurred_at >= first_sends.sent_at
                and e.occurred_at < {{ add_seconds(var('bot_seconds_after_send'), 'first_sends.sent_at') }}
                then 'within_2s_of_send'
        end as bot_reason

    from kept as e
    left join first_sends
        on e.tenant_id = first_sends.tenant_id
        and e.message_id = first_sends.message_id
    left join scanner_matches
        on e.tenant_id = scanner_matches.tenant_id
        and e.event_id = scanner_matches.event_id

)

select
    tenant_id,
    event_id,
    event_type,
    lead_id,
    message_id,
    workflow_execution_id,
    occurred_at,
    event_date,
    user_id,
    workflow_id,
    step_number,
    url,
    form_id,
    bounce_type,
    sentiment,
    bot_reason is not null as is_bot,
    bot_reason,
    received_at,
    batch_id,
    load_source,
    source_line
from flagged
