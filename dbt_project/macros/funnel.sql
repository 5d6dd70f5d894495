{#- The funnel engine's per-entity stage in SQL (METRICS.md, "Funnel"), for the default funnel marts.

    An attempt starts at each step-1 event; step k is the earliest step-k event at or after step k-1's
    (strictly after when both steps have the same event type), no later than the window after step 1
    (exactly the window still counts). Each entity keeps its attempt that reaches furthest (earliest on a tie).
    Human events only. The API's custom funnels run the same rule in leadron/funnel.py; a test proves both
    equal on the same events.

    funnel_attempts(events, steps, window_seconds, entity, carried, touched_since) selects one row per entity:
    tenant_id, entity, t1, the carried columns (of the step-1 event), t2..tn, depth. With touched_since (a SQL
    date expression) only entities with a step event on or after that day are derived (an incremental run).
    DuckDB matches each step with an ASOF join; the portable default with a join and min() (var funnel_portable
    forces the default on any engine: tests/test_funnel.py holds both formulations equal on DuckDB). -#}

{% macro funnel_attempts(events, steps, window_seconds, entity, carried=[], touched_since=none) -%}
with
{%- if touched_since %}
touched as (
    select distinct tenant_id, {{ entity }} as entity
    from {{ events }}
    where {{ entity }} is not null
        and event_date >= {{ touched_since }}
        and event_type in ({{ _funnel_types(steps) }})
),
{%- endif %}
ev as (
    select e.tenant_id, e.{{ entity }} as entity, e.event_type, e.occurred_at
        {%- for column in carried %}, e.{{ column }}{% endfor %}
    from {{ events }} as e
    {%- if touched_since %}
    inner join touched on touched.tenant_id = e.tenant_id and touched.entity = e.{{ entity }}
    {%- endif %}
    where e.{{ entity }} is not null
        and not e.is_bot
        and e.event_type in ({{ _funnel_types(steps) }})
),
a1 as (
    select tenant_id, entity, occurred_at as t1{% for column in carried %}, {{ column }}{% endfor %}
    from ev
    where event_type = '{{ steps[0] }}'
),
{%- for k in range(2, steps | length + 1) %}
e{{ k }} as (
    select tenant_id, entity, occurred_at from ev where event_type = '{{ steps[k - 1] }}'
),
{%- if var('funnel_portable', false) %}
{{ default__funnel_next_step(k, steps, window_seconds, carried) }},
{%- else %}
{{ adapter.dispatch('funnel_next_step', 'leadron')(k, steps, window_seconds, carried) }},
{%- endif %}
{%- endfor %}
ranked as (
    select a{{ steps | length }}.*,
        {{ _funnel_depth(steps | length) }} as depth,
        row_number() over (
            partition by tenant_id, entity order by {{ _funnel_depth(steps | length) }} desc, t1
        ) as attempt_rank
    from a{{ steps | length }}
)
select tenant_id, entity, t1{% for column in carried %}, {{ column }}{% endfor %}
    {%- for k in range(2, steps | length + 1) %}, t{{ k }}{% endfor %}, depth
from ranked
where attempt_rank = 1
{%- endmacro %}

{#- a<k>: every attempt of a<k-1> with t<k>, the step-k event it reaches (null if none within the window). -#}
{% macro duckdb__funnel_next_step(k, steps, window_seconds, carried) -%}
a{{ k }} as (
    select a.*,
        case when e.occurred_at <= {{ add_seconds(window_seconds, 'a.t1') }} then e.occurred_at end
            as t{{ k }}
    from a{{ k - 1 }} as a
    asof left join e{{ k }} as e
        on a.tenant_id = e.tenant_id and a.entity = e.entity
        and e.occurred_at {{ _funnel_after(k, steps) }} a.t{{ k - 1 }}
)
{%- endmacro %}

{% macro default__funnel_next_step(k, steps, window_seconds, carried) -%}
{%- set kept = ['tenant_id', 'entity', 't1'] + carried -%}
{%- for j in range(2, k) %}{% do kept.append('t' ~ j) %}{% endfor -%}
a{{ k }} as (
    -- The earliest step-k event after step k-1 is within the window exactly when some such event is.
    select {% for column in kept %}a.{{ column }}, {% endfor %}
        min(case when e.occurred_at <= {{ add_seconds(window_seconds, 'a.t1') }} then e.occurred_at end)
            as t{{ k }}
    from a{{ k - 1 }} as a
    left join e{{ k }} as e
        on a.tenant_id = e.tenant_id and a.entity = e.entity
        and e.occurred_at {{ _funnel_after(k, steps) }} a.t{{ k - 1 }}
    group by {% for column in kept %}a.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
)
{%- endmacro %}

{% macro _funnel_after(k, steps) -%}
    {{ '>' if steps[k - 1] == steps[k - 2] else '>=' }}
{%- endmacro %}

{% macro _funnel_types(steps) -%}
    {%- for step in steps | unique %}'{{ step }}'{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{% macro _funnel_depth(n) -%}
    ({% for k in range(1, n + 1) %}case when t{{ k }} is not null then 1 else 0 end{% if not loop.last %} + {% endif %}{% endfor %})
{%- endmacro %}

{#- A funnel mart from a per-entity stage: per tenant and breakdown, every step's entities, the average and
    median seconds from the previous step among those that reached it, and the conversions. `breakdowns` maps
    each output column to its SQL expression over the stage's row `b`. -#}
{% macro funnel_mart(attempts, n_steps, breakdowns) -%}
with steps as (
    select b.tenant_id
        {%- for name, expression in breakdowns.items() %}, {{ expression }} as {{ name }}{% endfor %}
        {%- for k in range(1, n_steps + 1) %},
        sum(case when b.depth >= {{ k }} then 1 else 0 end) as step{{ k }}_entities
        {%- if k > 1 %},
        avg(case when b.depth >= {{ k }} then {{ seconds_between('b.t' ~ (k - 1), 'b.t' ~ k) }} end)
            as step{{ k }}_avg_seconds,
        {{ median('case when b.depth >= ' ~ k ~ ' then ' ~ seconds_between('b.t' ~ (k - 1), 'b.t' ~ k) ~ ' end') }}
            as step{{ k }}_median_seconds
        {%- endif %}
        {%- endfor %}
    from {{ attempts }} as b
    group by b.tenant_id{% for expression in breakdowns.values() %}, {{ expression }}{% endfor %}
)
select *
    {%- for k in range(2, n_steps + 1) %},
    case when step1_entities = 0 then null else step{{ k }}_entities / step1_entities end
        as step{{ k }}_conversion_from_start,
    case when step{{ k - 1 }}_entities = 0 then null else step{{ k }}_entities / step{{ k - 1 }}_entities end
        as step{{ k }}_conversion_from_previous
    {%- endfor %}
from steps
{%- endmacro %}

{#- Seconds (with milliseconds) from one timestamp to a later one, a double on every engine. -#}
{% macro seconds_between(earlier, later) -%}
    {{ millis_between(earlier, later) }} / 1000.0e0
{%- endmacro %}
