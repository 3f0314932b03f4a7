{{ config(pre_hook="{{ delete_partition_range('as_of_date') }}", partition_by=day_partitions('as_of_date')) }}

-- Sufficient statistics per experiment arm, metric, window and as-of date,
-- for every metric of var('experiment_metrics') (dbt_project.yml). Python
-- turns these few rows into lifts and intervals.
--
-- A unit counts once assigned on or before the as-of date, belongs to its
-- first variant, and counts as zero without activity. Windows: 'cumulative'
-- = activity from assignment to the end of the as-of date; 'day' = activity
-- on the as-of date. The CUPED covariate is the same measure over the
-- var('pre_period_days') days before assignment. The scan is bounded by the
-- window of the experiments running in the run's days (activity since the
-- earliest of their starts minus the pre-period), never by all history. Sums are exact decimals, so re-runs
-- give bit-identical statistics.

{%- set measures = var('experiment_measures') %}
{%- set metrics = var('experiment_metrics') %}
{%- set pre_days = var('pre_period_days') %}
{#- the run's last day with experiment activity, sessions or orders: outcomes keep landing after the last visit
    (an order days after a contact), and each as-of date counts them; or the run's last day whose sessions or
    orders the quality gates passed, rows or none: a quiet day run alone gets its as-of rows as a backfill over
    it does (a trial's 14 days between enrolment and its late outcomes were in a backfill only) -#}
{%- set last_activity_day -%}
    (select max(activity_day) from (
        select cast(max(started_at) as date) as activity_day from {{ ref('stg_sessions') }}
        where started_at >= {{ min_date() }}
        union all
        select cast(max(ordered_at) as date) as activity_day from {{ ref('stg_orders') }}
        where ordered_at >= {{ min_date() }}
        union all
        select max(g.date) as activity_day from quality.gate_results g
        where g.table_name in ('sessions', 'orders') and g.passed
          and g.date between {{ min_date() }} and {{ max_date() }}
    ) as activity)
{%- endset %}

with experiments as (
    select experiment_id, control_variant, start_date, end_date
    from {{ ref('stg_experiments') }}
),

as_of as (
    -- no as-of date past the last day with data (only the run's days are scanned)
    select e.experiment_id, e.control_variant, d.as_of_date
    from experiments e
    cross join {{ days_from_to(min_date(),
        'least(' ~ max_date() ~ ', coalesce(' ~ last_activity_day ~ ', ' ~ min_date() ~ ' - 1))', 'as_of_date') }} as d
    where d.as_of_date >= e.start_date
      and (e.end_date is null or d.as_of_date <= e.end_date)
),

units as (
    select a.experiment_id, a.user_id, a.variant, a.assigned_at, a.assigned_date
    from {{ ref('stg_assignments') }} a
    join (select distinct experiment_id from as_of) x on x.experiment_id = a.experiment_id
    where a.assigned_date <= {{ max_date() }}
),

-- only experiments with an as-of date in this run: an ended experiment does not widen the scan
window_start as (
    select min(start_date) - interval {{ pre_days }} day as ts
    from experiments
    where experiment_id in (select as_of.experiment_id from as_of)
),

source_orders as (
    select user_id, ordered_at as ts, order_date as activity_date, status, cast(revenue as decimal(18, 2)) as revenue
    from {{ ref('stg_orders') }}
    where ordered_at >= (select window_start.ts from window_start) and {{ known_by_max_date('ordered_at') }}
),

source_sessions as (
    select user_id, started_at as ts, session_date as activity_date
    from {{ ref('stg_sessions') }}
    where started_at >= (select window_start.ts from window_start) and {{ known_by_max_date('started_at') }}
),

{%- for source in ['orders', 'sessions'] %}

-- per unit, activity day and period (pre-assignment or post), the measures of {{ source }}; the days before the
-- run's first as-of date count whole in every as-of date of the run, so they are one bucket (the day before it):
-- a day after a year of history joins a few rows per unit, not one per active day
unit_{{ source }} as (
    select u.experiment_id, u.user_id, greatest(e.activity_date, {{ min_date() }} - 1) as activity_day,
        e.ts >= u.assigned_at as is_post
        {%- for name, m in measures.items() %},
        {% if m.source != source -%}
        0
        {%- elif m.aggregate == 'count' -%}
        count(*) filter (where {{ m.where | default('true') }})
        {%- else -%}
        coalesce(sum({{ m.expression }}) filter (where {{ m.where | default('true') }}), 0)
        {%- endif %} as {{ name }}
        {%- endfor %}
    from units u
    join source_{{ source }} e
        on e.user_id = u.user_id
       and e.ts >= u.assigned_at - interval {{ pre_days }} day
    group by u.experiment_id, u.user_id, activity_day, is_post
),
{%- endfor %}

unit_events as (
    select * from unit_orders
    union all
    select * from unit_sessions
),

unit_totals as (
    select a.experiment_id, a.as_of_date, u.user_id, u.variant, u.variant = a.control_variant as is_control,
        u.assigned_date
        {%- for name in measures %},
        coalesce(sum(ev.{{ name }}) filter (where ev.is_post), 0) as cumulative_{{ name }},
        coalesce(sum(ev.{{ name }}) filter (where ev.is_post and ev.activity_day = a.as_of_date), 0) as day_{{ name }},
        coalesce(sum(ev.{{ name }}) filter (where not ev.is_post), 0) as pre_{{ name }}
        {%- endfor %}
    from as_of a
    join units u on u.experiment_id = a.experiment_id and u.assigned_date <= a.as_of_date
    left join unit_events ev
        on ev.experiment_id = u.experiment_id and ev.user_id = u.user_id and ev.activity_day <= a.as_of_date
    group by a.experiment_id, a.as_of_date, u.user_id, u.variant, is_control, u.assigned_date
),

{#- per metric and window: its unit's value y, denominator d, covariate x and which units it counts #}
{%- set columns = [] %}
{%- for name, m in metrics.items() %}
{%- for window in ['cumulative', 'day'] %}
    {%- set w = 'cumulative' if m.maturity_days is defined else window %}
    {%- if m.type == 'ratio' %}
        {%- set y = w ~ '_' ~ m.numerator %}
        {%- set den = w ~ '_' ~ m.denominator %}
        {%- set x = 'null' %}
    {%- else %}
        {%- set raw_y = w ~ '_' ~ m.measure %}
        {%- set y = '(case when ' ~ raw_y ~ ' > 0 then 1 else 0 end)' if m.type == 'proportion' else raw_y %}
        {%- set den = 'null' %}
        {%- if m.covariate is defined %}
            {%- set x = 'pre_' ~ m.covariate %}
        {%- elif m.type == 'proportion' %}
            {%- set x = '(case when pre_' ~ m.measure ~ ' > 0 then 1 else 0 end)' %}
        {%- else %}
            {%- set x = 'pre_' ~ m.measure %}
        {%- endif %}
    {%- endif %}
    {#- matured units only: the metric is final maturity_days after assignment #}
    {%- set counted = none if m.maturity_days is not defined else
        'assigned_date + ' ~ m.maturity_days ~ (' <= ' if window == 'cumulative' else ' = ') ~ 'as_of_date' %}
    {%- do columns.append({'metric': name, 'type': m.type, 'window': window, 'y': y, 'd': den, 'x': x,
        'counted': counted}) %}
{%- endfor %}
{%- endfor %}

{#- each sum over the counted units: its name and the product it sums (none: the one factor alone) #}
{%- set sums = [('value_sum', 'y', none), ('value_sum_sq', 'y', 'y'), ('denominator_sum', 'd', none),
    ('denominator_sum_sq', 'd', 'd'), ('value_denominator_sum', 'y', 'd'), ('covariate_sum', 'x', none),
    ('covariate_sum_sq', 'x', 'x'), ('value_covariate_sum', 'y', 'x')] %}

-- every metric and window summed in one pass over unit_totals (one UNION ALL branch per metric and window
-- was a scan each, and Spark inlines CTEs: 47 s for 300 rows a day), then one row per metric and window
arm_sums as (
    select experiment_id, variant, is_control, as_of_date
    {%- for c in columns %}
    {%- set k = loop.index0 %},
        count(*){% if c.counted %} filter (where {{ c.counted }}){% endif %} as n_{{ k }}
        {%- for name, first, second in sums %},
        {%- set a, b = c[first], (none if second is none else c[second]) %}
        {#- a product with a NULL factor is NULL: written so, Spark types no arithmetic on an untyped NULL #}
        {%- set expr = 'null' if 'null' in [a, b] else (a if b is none else a ~ ' * ' ~ b) %}
        {{ exact_sum(expr, where=c.counted) }} as {{ name }}_{{ k }}
        {%- endfor %}
    {%- endfor %}
    from unit_totals
    group by experiment_id, variant, is_control, as_of_date
),

metric_windows as (
    select m.k, m.metric, m.metric_type, m.analysis_window
    from (values
    {%- for c in columns %}
        ({{ loop.index0 }}, '{{ c.metric }}', '{{ c.type }}', '{{ c.window }}'){{ ',' if not loop.last }}
    {%- endfor %}
    ) as m (k, metric, metric_type, analysis_window)
),

metric_rows as (
    select s.experiment_id, s.variant, s.is_control, m.metric, m.metric_type, m.analysis_window, s.as_of_date
    {%- for name in ['n'] + sums | map('first') | list %},
        case m.k
            {%- for c in columns %}
            when {{ loop.index0 }} then {{ name }}_{{ loop.index0 }}
            {%- endfor %}
        end as {{ name }}
    {%- endfor %}
    from arm_sums s
    cross join metric_windows m
)

-- an arm with no unit counted for a metric and window (e.g. none matured yet) has no row
select * from metric_rows
where n > 0
