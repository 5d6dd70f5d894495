{#- Rows where any of `columns` is null: one query per model instead of one per column (a refresh run's data
    tests are mostly this check, and each test is a dbt node with its own fixed cost). -#}
{% test not_null_columns(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
