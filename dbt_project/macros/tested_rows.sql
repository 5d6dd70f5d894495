{#- Data tests of an incremental run check the rows the run wrote, not the history (a unique test over 10M rows
    costs seconds in every run). With LEADRON_DBT_TESTED_ROWS=written (the dbt asset sets it for a run with an
    event-day window that is not a full refresh nor the scheduled daily build), a test of a model or source
    whose config names its `written` rows reads only those: rows whose column is on or after the run's window
    start (`from: window_day`), its week (`from: window_week`), or derived by this run (`from: run_start`, a
    refreshed_at column). Every other test, and every test of the daily build, reads the whole table.
    dbt wraps the model of every generic test in get_where_subquery; this root-project version wins dispatch. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set written = written_rows_filter(relation) if execute and env_var('LEADRON_DBT_TESTED_ROWS', 'all') == 'written' else '' -%}
    {%- set filters = [config.get('where', ''), written] | select | list -%}
    {%- if filters -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ (filters | join(' and ')) ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro written_rows_filter(relation) -%}
    {%- set window_start = event_window_start() -%}
    {%- for node in graph.nodes.values() | list + graph.sources.values() | list
            if node.resource_type in ('model', 'source')
            and (node.alias or node.identifier or node.name) == relation.identifier
            and node.schema == relation.schema -%}
        {%- set written = node.config.get('written') or node.meta.get('written') -%}
        {%- if written and window_start -%}
            {%- set since = {
                'window_day': window_start,
                'window_week': week_start(window_start),
                'run_start': run_started_timestamp(),
            }[written['from']] -%}
            {{- return(written['column'] ~ ' >= ' ~ since) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return('') -}}
{%- endmacro %}
