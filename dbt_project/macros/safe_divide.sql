{#- A METRICS.md rate: numerator / denominator, NULL when the denominator is 0. -#}
{% macro safe_divide(numerator, denominator) -%}
    case when {{ denominator }} = 0 then null
         else cast({{ numerator }} as {{ leadron.type_double() }}) / {{ denominator }} end
{%- endmacro %}

{#- A 64-bit float (dbt.type_float() is 32-bit on some engines, DuckDB among them). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'leadron')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}
