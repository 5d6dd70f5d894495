{#- The first event day an incremental run re-derives: the run's window start (var min_date, else the
    LEADRON_DBT_MIN_DATE a Dagster run sets from its partition range, else the newest day `relation` already
    holds) minus var lookback_days (default 3). Every event-grain model uses the same start, so a late event
    and everything derived from it are re-derived together; earlier days are kept as they are. -#}
{% macro event_window_start(relation) -%}
    {%- set min_date = var('min_date', env_var('LEADRON_DBT_MIN_DATE', '')) -%}
    {%- set window_start = "cast('" ~ min_date ~ "' as date)" if min_date
        else "(select max(event_date) from " ~ relation ~ ")" -%}
    {{- dbt.dateadd('day', -1 * var('lookback_days', 3), window_start) -}}
{%- endmacro %}
