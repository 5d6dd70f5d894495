{#- delete+insert for DuckDB with a semi-join delete. dbt-duckdb's own version deletes `using` the new rows,
    a join that multiplies when the key is a partition (tenant, day) rather than a row key: re-counting a week
    of int_lead_weeks took 12 s that way, against well under a second as a semi-join (measured on 10M events).
    Dispatch finds this root-project macro before the adapter's. -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}

    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}

    {% if keys %}
        delete from {{ target }} as dbt_incremental_target
        where exists (
            select 1
            from {{ source }} as dbt_incremental_source
            where {% for key in keys %}dbt_incremental_source.{{ key }} = dbt_incremental_target.{{ key }}{{ " and " if not loop.last }}{% endfor %}
        )
        {%- for predicate in incremental_predicates or [] %}
            and {{ predicate }}
        {%- endfor %};
    {% endif %}

    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source }}
    )

{%- endmacro %}
