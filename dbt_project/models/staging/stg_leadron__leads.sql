-- Newest snapshot of each tenant's leads (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'leads')) }}

),

renamed as (

    select
        tenant_id,
        lead_id,
        email as lead_email,
        company,
        source as lead_source,
        owner_user_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        status as lead_status,
        cast(converted_at as {{ dbt.type_timestamp() }}) as converted_at,
        snapshot_id
    from source

)

select * from renamed
