-- Step value of each sequence: per tenant, workflow and step, the sends, the reply rate of the
-- step among executions that had not replied before it (marginal value), and the cumulative
-- reply rate of executions that started the sequence.

with messages as (

    select * from {{ ref('int_messages') }}
    where has_send_event and workflow_id is not null and step_number is not null

),

executions as (

    select
        tenant_id,
        workflow_id,
        workflow_execution_id,
        min(case when replies > 0 then step_number end) as first_reply_step,
        max(case when step_number = 1 then 1 else 0 end) as started
    from messages
    group by tenant_id, workflow_id, workflow_execution_id

),

steps as (

    select
        m.tenant_id,
        m.workflow_id,
        m.step_number,
        count(*) as sends,
        count(distinct m.workflow_execution_id) as executions,
        count(distinct case when x.first_reply_step is null or x.first_reply_step >= m.step_number
                            then m.workflow_execution_id end) as executions_not_yet_replied,
        count(distinct case when x.first_reply_step = m.step_number then m.workflow_execution_id end)
            as executions_replied_at_step
    from messages as m
    inner join executions as x
        on m.tenant_id = x.tenant_id
        and m.workflow_id = x.workflow_id
        and m.workflow_execution_id = x.workflow_execution_id
    group by m.tenant_id, m.workflow_id, m.step_number

),

cumulative as (

    select
        s.tenant_id,
        s.workflow_id,
        s.step_number,
        sum(x.started) as executions_started,
        sum(case when x.started = 1 and x.first_reply_step <= s.step_number then 1 else 0 end)
            as executions_replied_by_step
    from steps as s
    inner join executions as x
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
