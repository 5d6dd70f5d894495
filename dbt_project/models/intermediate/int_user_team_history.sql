-- Which team each rep was in, and when: one row per rep per users.csv snapshot, valid from the
-- snapshot's landing until the next snapshot (the first one also covers everything before it).

with snapshots as (

    select
        tenant_id,
        user_id,
        team_id,
        cast(snapshot_at as {{ dbt.type_timestamp() }}) as snapshot_at,
        row_number() over (partition by tenant_id, user_id order by snapshot_at) as snapshot_rank,
        lead(cast(snapshot_at as {{ dbt.type_timestamp() }})) over (
            partition by tenant_id, user_id order by snapshot_at
        ) as next_snapshot_at
    from {{ source('leadron_raw', 'users') }}

)

select
    tenant_id,
    user_id,
    team_id,
    case when snapshot_rank = 1 then cast('1900-01-01' as {{ dbt.type_timestamp() }}) else snapshot_at end as valid_from,
    next_snapshot_at as valid_to
from snapshots
