-- Newest snapshot of each tenant's workflow_steps (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'workflow_steps')) }}

),

renamed as (

    select
        tenant_id,
        workflow_id,
        cast(step_number as {{ dbt.type_int() }}) as step_number,
        channel,
        cast(delay_days as {{ dbt.type_int() }}) as delay_days,
        snapshot_id
    from source

)

select * from renamed
