{#- Lead-scoring snapshots (ml_lead_features): the as-of day, and the ml_snapshot_count - 1 latest grid days
    before it, a grid day being every ml_snapshot_every_days-th day from 1970-01-01. A grid snapshot's date does
    not move as the as-of day does, so its rows are derived once and kept: a day's run derives only the as-of
    snapshot, the grid snapshots it does not hold yet, those the run window's late events can change (a
    snapshot after the window's first day), and those whose label horizon (ml_label_days) has just passed
    (or, the as-of day moved back, no longer has). -#}

{#- One row per snapshot date (column snapshot_date). -#}
{% macro ml_snapshot_dates() -%}
    {%- set every = var('ml_snapshot_every_days') -%}
    {%- set epoch = "cast('1970-01-01' as date)" -%}
    {#- The days from the epoch to the day before the as-of day, rounded down to the grid. -#}
    {%- set day_before = '(' ~ dbt.datediff(epoch, as_of_date(), 'day') ~ ' - 1)' -%}
    {%- set last_grid = day_before ~ ' - (' ~ day_before ~ ' % ' ~ every ~ ')' -%}
    select {{ as_of_date() }} as snapshot_date
    {%- for k in range(var('ml_snapshot_count') - 1) %}
    union all
    select cast({{ dbt.dateadd('day', last_grid ~ ' - ' ~ k * every, epoch) }} as date) as snapshot_date
    {%- endfor %}
{%- endmacro %}

{#- The snapshot dates an incremental run derives (all of them otherwise), given `relation`, the model's table. -#}
{% macro ml_snapshots_to_derive(relation) -%}
    {%- set window_start = event_window_start() -%}
    select s.snapshot_date
    from ({{ ml_snapshot_dates() }}) as s
    where s.snapshot_date = {{ as_of_date() }}
        or s.snapshot_date not in (select snapshot_date from {{ relation }})
        {%- if window_start %}
        or s.snapshot_date > {{ window_start }}
        {%- endif %}
        or s.snapshot_date in (
            select snapshot_date
            from {{ relation }}
            where (converted_within_90d is null)
                <> (snapshot_date > {{ dbt.dateadd('day', -1 * var('ml_label_days'), as_of_date()) }})
        )
{%- endmacro %}

{#- rederived_rows() for ml_lead_features (`alias`: its stored rows): rows of a snapshot the run derives, and of a
    date that is no longer a snapshot. -#}
{% macro ml_snapshots_rederived(alias, column) -%}
    ({{ alias }}.{{ column }} in ({{ ml_snapshots_to_derive(this) }})
     or {{ alias }}.{{ column }} not in ({{ ml_snapshot_dates() }}))
{%- endmacro %}
