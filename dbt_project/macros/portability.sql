{#- Engine-specific SQL lives here behind adapter.dispatch, with a portable default__. -#}

{# Null-safe surrogate key over columns (ANSI concat + dbt.hash). #}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{# Case-insensitive substring match of a pattern column inside a text column. #}
{% macro contains_ci(haystack, needle) -%}
    {{ return(adapter.dispatch('contains_ci', 'leadron')(haystack, needle)) }}
{%- endmacro %}

{% macro default__contains_ci(haystack, needle) -%}
    {{ dbt.position('lower(' ~ needle ~ ')', 'lower(' ~ haystack ~ ')') }} > 0
{%- endmacro %}

{# Rows of a full-snapshot dimension that belong to the newest snapshot of their tenant. #}
{% macro latest_snapshot(relation) -%}
    select snap.*
    from {{ relation }} as snap
    inner join (
        select tenant_id, max(snapshot_id) as snapshot_id
        from {{ relation }}
        group by tenant_id
    ) as newest
        on snap.tenant_id = newest.tenant_id
        and snap.snapshot_id = newest.snapshot_id
{%- endmacro %}

{# Median of an expression (an aggregate). #}
{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'leadron')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro spark__median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{# The Monday (UTC) of the week holding a date or timestamp expression, as a date. #}
{% macro week_start(expression) -%}
    cast({{ dbt.date_trunc('week', expression) }} as date)
{%- endmacro %}

{# A timestamp plus a whole number of seconds, fractions of a second kept (dbt-spark's dateadd goes through
   unix seconds and drops them). #}
{% macro add_seconds(seconds, timestamp) -%}
    {{ return(adapter.dispatch('add_seconds', 'leadron')(seconds, timestamp)) }}
{%- endmacro %}

{% macro default__add_seconds(seconds, timestamp) -%}
    timestampadd(SECOND, {{ seconds }}, {{ timestamp }})
{%- endmacro %}

{% macro duckdb__add_seconds(seconds, timestamp) -%}
    {{ dbt.dateadd('second', seconds, timestamp) }}
{%- endmacro %}

{# Whole milliseconds from one timestamp to another, a bigint (dbt-spark's datediff counts whole seconds). #}
{% macro millis_between(earlier, later) -%}
    {{ return(adapter.dispatch('millis_between', 'leadron')(earlier, later)) }}
{%- endmacro %}

{% macro default__millis_between(earlier, later) -%}
    (unix_millis(cast({{ later }} as timestamp)) - unix_millis(cast({{ earlier }} as timestamp)))
{%- endmacro %}

{% macro duckdb__millis_between(earlier, later) -%}
    date_diff('millisecond', {{ earlier }}, {{ later }})
{%- endmacro %}
