{#- The run's as-of time: the `as_of` var (ISO timestamp, UTC) when given, else now. -#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
