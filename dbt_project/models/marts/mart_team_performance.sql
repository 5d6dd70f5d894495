-- Team performance per tenant, team, rep and week (Monday, UTC) of the send: the rep is the
-- message's sender; the team is the rep's team at the time of the send (int_user_team_history).
--
-- Incremental: re-aggregates whole (tenant, week) partitions holding a send day whose int_messages rows
-- were derived since this model last read it (refreshed_at); the other weeks are kept.

{{ config(**partition_overwrite(['tenant_id', 'week_start'], rederive={'rows': 'send_weeks', 'column': 'week_start'}, written={'column': 'refreshed_at', 'from': 'run_start'})) }}

with messages as (

    select m.*
    from {{ ref('int_messages') }} as m
    {% if is_incremental() %}
    inner join (
        select distinct tenant_id, {{ week_start('send_date') }} as week_start
        from ({{ refreshed_send_days(this) }}) as days
    ) as weeks
        on m.tenant_id = weeks.tenant_id
        and {{ week_start('m.send_date') }} = weeks.week_start
    {% endif %}
    where m.has_send_event

),

with_team as (

    select
        m.*,
        t.team_id,
        {{ week_start('m.sent_at') }} as week_start,
        l.converted_at
    from messages as m
    left join {{ ref('int_user_team_history') }} as t
        on m.tenant_id = t.tenant_id
        and m.user_id = t.user_id
        and m.sent_at >= t.valid_from
        and (t.valid_to is null or m.sent_at < t.valid_to)
    left join {{ ref('stg_leadron__leads') }} as l
        on m.tenant_id = l.tenant_id and m.lead_id = l.lead_id

),

weekly as (

    select
        tenant_id,
        team_id,
        user_id,
        week_start,
        {{ email_performance_counts() }},
        count(distinct case when converted_at >= sent_at then lead_id end) as leads_converted,
        {{ leadron.median("case when is_delivered and replies > 0 then "
                          ~ dbt.datediff('sent_at', 'first_replied_at', 'second') ~ " end") }}
            as median_seconds_to_first_reply,
        max(refreshed_at) as refreshed_at
    from with_team
    group by tenant_id, team_id, user_id, week_start

)

select
    {{ surrogate_key(['tenant_id', 'team_id', 'user_id', 'week_start']) }} as team_week_key,
    weekly.*,
    {{ safe_divide('unique_opens', 'delivered') }} as open_rate,
    {{ safe_divide('unique_clicks', 'delivered') }} as click_rate,
    {{ safe_divide('replied', 'delivered') }} as reply_rate,
    {{ safe_divide('bounced', 'sent') }} as bounce_rate,
    {{ safe_divide('sent', 'replied') }} as touches_per_reply
from weekly
