{#- The run's as-of time (UTC): the `as_of` var, else LEADRON_AS_OF (which a Dagster run sets; an env_var
    rather than --vars so that dbt's partial parsing survives), else now. -#}
{% macro as_of_timestamp() -%}
    {%- set as_of = var('as_of', env_var('LEADRON_AS_OF', '')) -%}
    {%- if as_of -%}
        cast('{{ as_of }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- The as-of time's UTC day. -#}
{% macro as_of_date() -%}
    cast({{ as_of_timestamp() }} as date)
{%- endmacro %}
