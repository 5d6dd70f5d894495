-- Newest snapshot of each tenant's tenants (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'tenants')) }}

),

renamed as (

    select
        tenant_id,
        name as tenant_name,
        timezone,
        snapshot_id
    from source

)

select * from renamed
