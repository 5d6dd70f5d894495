-- Newest snapshot of each tenant's workflows (dimension files are full snapshots), typed and renamed.

with source as (

    {{ latest_snapshot(source('leadron_raw', 'workflows')) }}

),

renamed as (

    select
        tenant_id,
        workflow_id,
        name as workflow_name,
        snapshot_id
    from source

)

select * from renamed
