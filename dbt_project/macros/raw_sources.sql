{#- The raw layer each engine reads. On DuckDB the ingest assets load raw.* into the warehouse file, so there is
    nothing to do. Elsewhere (Spark) they write the same rows as Parquet under LEADRON_RAW_PARQUET_DIR
    (leadron/raw_load.py), and each run's start maps raw.<table> onto those files: tables over a location,
    re-created so a new column or file is seen. -#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources', 'leadron')()) }}
{%- endmacro %}

{% macro duckdb__register_raw_sources() -%}
    select 1
{%- endmacro %}

{% macro default__register_raw_sources() -%}
    {%- set folder = env_var('LEADRON_RAW_PARQUET_DIR', '') -%}
    {%- if not folder -%}
        {{ exceptions.raise_compiler_error("LEADRON_RAW_PARQUET_DIR is not set: run dbt through `leadron run`") }}
    {%- endif -%}
    {%- if not execute -%}{{ return('select 1') }}{%- endif -%}
    {%- set source_node = graph.sources.values() | selectattr('source_name', 'equalto', 'leadron_raw') | list -%}
    {%- do run_query('create schema if not exists ' ~ source_node[0].schema) -%}
    {%- for table in source_node -%}
        {%- do run_query('drop table if exists ' ~ table.schema ~ '.' ~ table.identifier) -%}
        {%- do run_query("create table " ~ table.schema ~ "." ~ table.identifier ~ " using parquet location '"
                         ~ folder ~ "/" ~ table.identifier ~ "'") -%}
    {%- endfor -%}
    select 1
{%- endmacro %}
