-- Step value of each sequence: per tenant, workflow and step, the sends, the reply rate of the
-- step among executions that had not replied before it (marginal value), and the cumulative
-- reply rate of executions that started the sequence.

with execution_steps as (

    select * from {{ ref('int_execution_steps') }}

),

steps as (

    select
        tenant_id,
        workflow_id,
        step_number,
        cast(sum(sends) as {{ dbt.type_bigint() }}) as sends,
        count(*) as executions,
        cast(sum(case when first_reply_step is null or first_reply_step >= step_number then 1 else 0 end)
             as {{ dbt.type_bigint() }}) as executions_not_yet_replied,
        cast(sum(case when first_reply_step = step_number then 1 else 0 end) as {{ dbt.type_bigint() }})
            as executions_replied_at_step
    from execution_steps
    group by tenant_id, workflow_id, step_number

),

-- The executions that started at step 1, counted by first replied step. A workflow's messages without an
-- execution id count as one execution here (and in no step's counts above).
started as (

    select tenant_id, workflow_id, first_reply_step, count(*) as executions
    from execution_steps
    where step_number = 1
    group by tenant_id, workflow_id, first_reply_step
    union all
    select tenant_id, workflow_id, first_reply_step, 1 as executions
    from (
        select tenant_id, workflow_id, {{ execution_outcome() }}
        from {{ ref('int_messages') }} as m
        where {{ sequence_message('m') }} and m.workflow_execution_id is null
        group by tenant_id, workflow_id
    ) as unidentified
    where started = 1

),

cumulative as (

    select
        s.tenant_id,
        s.workflow_id,
        s.step_number,
        coalesce(sum(x.executions), 0) as executions_started,
        coalesce(sum(case when x.first_reply_step <= s.step_number then x.executions else 0 end), 0)
            as executions_replied_by_step
    from steps as s
    left join started as x
        on s.tenant_id = x.tenant_id and s.workflow_id = x.workflow_id
    group by s.tenant_id, s.workflow_id, s.step_number

)

select
    {{ surrogate_key(['s.tenant_id', 's.workflow_id', 's.step_number']) }} as step_key,
    s.tenant_id,
    s.workflow_id,
    s.step_number,
    s.sends,
    s.executions,
    s.executions_not_yet_replied,
    s.executions_replied_at_step,
    {{ safe_divide('s.executions_replied_at_step', 's.executions_not_yet_replied') }} as step_reply_rate,
    c.executions_started,
    c.executions_replied_by_step,
    {{ safe_divide('c.executions_replied_by_step', 'c.executions_started') }} as cumulative_reply_rate
from steps as s
inner join cumulative as c
    on s.tenant_id = c.tenant_id and s.workflow_id = c.workflow_id and s.step_number = c.step_number
