{#- Per-type engagement counts of a grouped event set: sends, human opens and clicks (bot rule applied
    upstream as is_bot), replies, bounces, form submissions and page visits. One definition for the lead
    engagement mart and the lead features. -#}
{% macro engagement_counts() %}
        sum(case when event_type = 'email_sent' then 1 else 0 end) as sends,
        sum(case when event_type = 'email_open' and not is_bot then 1 else 0 end) as opens,
        sum(case when event_type = 'link_click' and not is_bot then 1 else 0 end) as clicks,
        sum(case when event_type = 'email_reply' then 1 else 0 end) as replies,
        sum(case when event_type = 'email_bounce' then 1 else 0 end) as bounces,
        sum(case when event_type = 'form_submission' then 1 else 0 end) as form_submissions,
        sum(case when event_type = 'page_visit' then 1 else 0 end) as page_visits
{%- endmacro %}

{#- The engagement score's weights (METRICS.md): one list for the lead engagement mart and the lead features. -#}
{% macro engagement_weights() -%}
    {{ return([('open', 'email_open', 1), ('click', 'link_click', 3), ('visit', 'page_visit', 2),
               ('form', 'form_submission', 8), ('reply', 'email_reply', 10)]) }}
{%- endmacro %}

{#- The weight of a human event of `alias` (0 for bots, other types and events after `as_of`). -#}
{% macro engagement_weight(alias, as_of) -%}
    case
        when {{ alias }}.is_bot or {{ alias }}.occurred_at > {{ as_of }} then 0
        {%- for _, event_type, weight in engagement_weights() %}
        when {{ alias }}.event_type = '{{ event_type }}' then {{ weight }}
        {%- endfor %}
        else 0
    end
{%- endmacro %}

{#- The engagement score's decay from `earlier` to `later` (timestamps): 0.5 ^ (age / 14 days). One half-life for the
    lead days, the lead engagement mart and the lead features. -#}
{% macro engagement_decay(earlier, later) -%}
    power(0.5, {{ millis_between(earlier, later) }} / {{ 86400000.0 * 14 }})
{%- endmacro %}
