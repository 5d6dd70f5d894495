-- Newest snapshot of each tenant's users (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'users')) }}

),

renamed as (

    select
        tenant_id,
        user_id,
        name as user_name,
        email as user_email,
        team_id,
        snapshot_id
    from source

)

select * from renamed
