{#- The sequence-step rules, one place for int_execution_steps and mart_sequence_steps (its messages without an
    execution id). -#}

{#- The messages that count for a sequence's steps (`alias`: int_messages rows): sent, with a workflow and a step. -#}
{% macro sequence_message(alias) -%}
    {{ alias }}.has_send_event and {{ alias }}.workflow_id is not null and {{ alias }}.step_number is not null
{%- endmacro %}

{#- Over one execution's messages: the first step whose message has an attributed reply, and whether it sent step 1. -#}
{% macro execution_outcome() -%}
        min(case when replies > 0 then step_number end) as first_reply_step,
        max(case when step_number = 1 then 1 else 0 end) as started
{%- endmacro %}
