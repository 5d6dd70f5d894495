-- One row per sequence execution and step it sent (messages with a send event, a workflow and a step): the
-- step's sends, and the execution's first replied step and whether it started at step 1. mart_sequence_steps
-- aggregates it instead of every message.
--
-- Incremental: re-derives, each from all of its messages, the executions with a message that int_messages
-- derived since this model last ran (its refreshed_at); the others are kept. Messages without an execution id
-- have no row here (the mart reads them from int_messages). A messages snapshot that moves a message to another
-- execution rewrites history like any dimension edit: `leadron run --full-refresh`.

{{ config(**partition_overwrite(['tenant_id', 'workflow_execution_id'], written={'column': 'refreshed_at', 'from': 'run_start'})) }}

with

{% if is_incremental() %}
touched as (

    select distinct tenant_id, workflow_execution_id
    from {{ ref('int_messages') }}
    where workflow_execution_id is not null
        and refreshed_at > (select coalesce(max(refreshed_at), cast('1970-01-01' as {{ dbt.type_timestamp() }})) from {{ this }})

),
{% endif %}

messages as (

    select m.tenant_id, m.workflow_id, m.workflow_execution_id, m.step_number, m.replies
    from {{ ref('int_messages') }} as m
    {% if is_incremental() %}
    inner join touched
        on m.tenant_id = touched.tenant_id and m.workflow_execution_id = touched.workflow_execution_id
    {% endif %}
    where {{ sequence_message('m') }} and m.workflow_execution_id is not null

),

executions as (

    select
        tenant_id,
        workflow_id,
        workflow_execution_id,
{{ execution_outcome() }}
    from messages
    group by tenant_id, workflow_id, workflow_execution_id

)

select
    m.tenant_id,
    m.workflow_id,
    m.workflow_execution_id,
    m.step_number,
    count(*) as sends,
    min(x.first_reply_step) as first_reply_step,
    min(x.started) as started,
    {{ run_started_timestamp() }} as refreshed_at
from messages as m
inner join executions as x
    on m.tenant_id = x.tenant_id
    and m.workflow_id = x.workflow_id
    and m.workflow_execution_id = x.workflow_execution_id
group by m.tenant_id, m.workflow_id, m.workflow_execution_id, m.step_number
