{#- Post-hook of the tables the warehouse file takes from a Spark build (leadron/spark_tables.py): marts, ml and
    the staged events. Spark writes the table once more as plain Parquet under
    LEADRON_SPARK_DIR/exports/<schema>/<table>/, in the column order the model's YAML lists (a partitioned
    Spark table keeps its partition column last; an empty one has no file, an export always has one). On
    DuckDB the tables are already in the warehouse file: nothing to do. -#}
{% macro export_for_warehouse() -%}
    {{ return(adapter.dispatch('export_for_warehouse', 'leadron')()) }}
{%- endmacro %}

{% macro duckdb__export_for_warehouse() -%}
{%- endmacro %}

{% macro default__export_for_warehouse() -%}
    {%- set columns = model.columns.keys() | list -%}
    {#- Parsing renders hooks before the YAML's columns are attached. -#}
    {%- if not execute -%}
        {{- return('') -}}
    {%- elif not columns -%}
        {{ exceptions.raise_compiler_error(this ~ " is exported to the warehouse: list its columns in its YAML") }}
    {%- endif -%}
    insert overwrite directory '{{ env_var('LEADRON_SPARK_DIR', '.leadron/spark') }}/exports/{{ this.schema }}/{{ this.identifier }}'
    using parquet
    select {% for column in columns %}{{ adapter.quote(column) }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ this }}
{%- endmacro %}
