{#- For each reply: the latest send to the same lead before it that also meets `condition`
    (aliases: r = reply, s = send). One row per reply that has such a send. -#}
{% macro latest_send_before_reply(replies, sends, condition) %}
    select tenant_id, event_id, attributed_message_id
    from (
        select
            r.tenant_id,
            r.event_id,
            s.message_id as attributed_message_id,
            row_number() over (
                partition by r.tenant_id, r.event_id
                order by s.sent_at desc, s.message_id desc
            ) as candidate_rank
        from {{ replies }} as r
        inner join {{ sends }} as s
            on r.tenant_id = s.tenant_id
            and r.lead_id = s.lead_id
            and s.sent_at < r.occurred_at
            and {{ condition }}
    ) as candidates
    where candidate_rank = 1
{% endmacro %}
