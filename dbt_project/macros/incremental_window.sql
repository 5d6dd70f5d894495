{#- The first event day an incremental run re-derives: the run's window start (var min_date, else the
    LEADRON_DBT_MIN_DATE a Dagster run sets from its partition range) minus var lookback_days (default 3).
    Without a window, the newest day `relation` already holds (its event_date column) stands in; a model
    without such a column gets '' and rebuilds in full. Every event-grain model uses the same start, so a
    late event and everything derived from it are re-derived together; earlier days are kept as they are. -#}
{% macro event_window_start(relation=none) -%}
    {%- set min_date = var('min_date', env_var('LEADRON_DBT_MIN_DATE', '')) -%}
    {%- if min_date -%}
        {%- set window_start = "cast('" ~ min_date ~ "' as date)" -%}
    {%- elif relation is not none -%}
        {%- set window_start = "(select max(event_date) from " ~ relation ~ ")" -%}
    {%- else -%}
        {{- return('') -}}
    {%- endif -%}
    {{- return(dbt.dateadd('day', -1 * var('lookback_days', 3), window_start)) -}}
{%- endmacro %}
