{#- The first event day an incremental run re-derives: the run's window start (var min_date, else the
    LEADRON_DBT_MIN_DATE a Dagster run sets from its partition range) minus var lookback_days (default 3).
    Without a window, the newest day `relation` already holds (its event_date column) stands in; a model
    without such a column gets '' and rebuilds in full. Every event-grain model uses the same start, so a
    late event and everything derived from it are re-derived together; earlier days are kept as they are. -#}
{% macro event_window_start(relation=none) -%}
    {%- set min_date = var('min_date', env_var('LEADRON_DBT_MIN_DATE', '')) -%}
    {%- if min_date -%}
        {%- set window_start = "cast('" ~ min_date ~ "' as date)" -%}
    {%- elif relation is not none -%}
        {%- set window_start = "(select max(event_date) from " ~ relation ~ ")" -%}
    {%- else -%}
        {{- return('') -}}
    {%- endif -%}
    {{- return(dbt.dateadd('day', -1 * var('lookback_days', 3), window_start)) -}}
{%- endmacro %}

{#- The dbt run's start (UTC) as a timestamp literal: when the rows a run derives were derived. -#}
{% macro run_started_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The send days (tenant_id, send_date) whose int_messages rows were derived after `relation` last read
    them (its refreshed_at column), and the days those messages were sent on before a second, earlier
    send moved them: the partitions an incremental email mart re-aggregates. -#}
{% macro refreshed_send_days(relation) -%}
    {%- set since = "(select coalesce(max(refreshed_at), cast('1970-01-01' as " ~ dbt.type_timestamp()
                    ~ ")) from " ~ relation ~ ")" -%}
    select tenant_id, send_date
    from {{ ref('int_messages') }}
    where has_send_event and refreshed_at > {{ since }}
    union
    select tenant_id, replaced_send_date as send_date
    from {{ ref('int_messages') }}
    where replaced_send_date is not null and refreshed_at > {{ since }}
{%- endmacro %}

{#- In an incremental run, keep only rows of `alias` on the days of the model's changed_days CTE
    (built from refreshed_send_days). -#}
{% macro only_changed_days(alias, day_column) -%}
    {%- if is_incremental() %}
    inner join changed_days
        on {{ alias }}.tenant_id = changed_days.tenant_id and {{ day_column }} = changed_days.send_date
    {%- endif %}
{%- endmacro %}

{#- The rows of the model's existing table (as `alias`) that an incremental run re-derives beyond those its new
    rows replace by unique key, from the model's `rederive` config; '' when there are none. Both engines'
    strategies (macros/partition_overwrite.sql) drop them:
    - send_days / send_weeks (column): the (tenant, day) partitions, or the weeks holding them, that
      refreshed_send_days finds; a day whose only message moved to an earlier send day would otherwise keep
      its rows;
    - window_weeks (column): the weeks from the run window's first week on, which the model recounts whole,
      so that a week left with no row (its only activity turned bot, say) goes too;
    - ml_snapshots (column): the snapshots ml_lead_features derives, and dates no longer a snapshot
      (macros/ml_snapshots.sql). -#}
{% macro rederived_rows(alias) -%}
    {%- set rederive = config.get('rederive') or {} -%}
    {%- set kind, column = rederive.get('rows'), rederive.get('column') -%}
    {%- if kind in ('send_days', 'send_weeks') -%}
        {%- set day = week_start('days.send_date') if kind == 'send_weeks' else 'days.send_date' -%}
        exists (
            select 1
            from ({{ refreshed_send_days(this) }}) as days
            where days.tenant_id = {{ alias }}.tenant_id and {{ day }} = {{ alias }}.{{ column }}
        )
    {%- elif kind == 'window_weeks' -%}
        {%- set window_start = event_window_start() -%}
        {%- if window_start -%}{{ alias }}.{{ column }} >= {{ week_start(window_start) }}{%- endif -%}
    {%- elif kind == 'ml_snapshots' -%}
        {{ ml_snapshots_rederived(alias, column) }}
    {%- elif kind -%}
        {{ exceptions.raise_compiler_error("rederive rows: " ~ kind ~ " is not one of send_days, send_weeks, window_weeks, ml_snapshots") }}
    {%- endif -%}
{%- endmacro %}
