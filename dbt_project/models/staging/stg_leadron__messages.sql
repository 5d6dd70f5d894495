-- Newest snapshot of each tenant's messages (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'messages')) }}

),

renamed as (

    select
        tenant_id,
        message_id,
        lead_id,
        user_id,
        workflow_id,
        workflow_execution_id,
        cast(step_number as {{ dbt.type_int() }}) as step_number,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        subject,
        snapshot_id
    from source

)

select * from renamed
