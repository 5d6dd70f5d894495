-- Newest snapshot of each tenant's teams (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'teams')) }}

),

renamed as (

    select
        tenant_id,
        team_id,
        name as team_name,
        snapshot_id
    from source

)

select * from renamed
