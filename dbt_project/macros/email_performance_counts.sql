{#- The email-performance counts of METRICS.md as aggregates over int_messages rows that have a send
    event; engagement is counted on delivered messages. One definition for every mart that shows them. -#}
{% macro email_performance_counts() %}
        count(*) as sent,
        sum(case when is_bounced then 1 else 0 end) as bounced,
        sum(case when is_hard_bounce then 1 else 0 end) as hard_bounced,
        sum(case when is_soft_bounce then 1 else 0 end) as soft_bounced,
        sum(case when is_delivered then 1 else 0 end) as delivered,
        sum(case when is_delivered then human_opens else 0 end) as opens_total,
        sum(case when is_delivered and human_opens > 0 then 1 else 0 end) as unique_opens,
        sum(case when is_delivered then human_clicks else 0 end) as clicks_total,
        sum(case when is_delivered and human_clicks > 0 then 1 else 0 end) as unique_clicks,
        sum(case when is_delivered and replies > 0 then 1 else 0 end) as replied,
        sum(case when is_delivered and positive_replies > 0 then 1 else 0 end) as positive_replied,
        count(distinct lead_id) as leads_contacted,
        count(distinct case when is_delivered and human_opens > 0 then lead_id end) as leads_opened,
        count(distinct case when is_delivered and human_clicks > 0 then lead_id end) as leads_clicked,
        count(distinct case when is_delivered and replies > 0 then lead_id end) as leads_replied
{% endmacro %}
