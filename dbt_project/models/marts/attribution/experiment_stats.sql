{{ config(pre_hook="{{ delete_partition_range('as_of_date') }}") }}

-- Sufficient statistics per experiment arm and metric, cumulative since each
-- unit's assignment, for every as-of date of the run. Python turns these few
-- rows into lifts and intervals. The scan is bounded by the experiment
-- window (orders since its start), never by all history.

with as_of as (
    select e.experiment_id, e.control_variant, e.start_date, cast(d.generate_series as date) as as_of_date
    from {{ ref('stg_experiments') }} e
    cross join generate_series(
        {{ min_date() }},
        least({{ max_date() }}, (select max(session_date) from {{ ref('stg_sessions') }})),
        interval 1 day
    ) d
    where cast(d.generate_series as date) >= e.start_date
      and (e.end_date is null or cast(d.generate_series as date) <= e.end_date)
),

units as (
    select a.experiment_id, a.user_id, a.variant, a.assigned_at, a.assigned_date
    from {{ ref('stg_assignments') }} a
    where a.assigned_date <= {{ max_date() }}
),

orders as (
    -- exact decimals: parallel float sums are not reproducible to the last bit
    select o.user_id, o.ordered_at, o.order_date, cast(o.revenue as decimal(18, 2)) as revenue
    from {{ ref('stg_orders') }} o
    where o.is_completed
      and o.ordered_at >= (select min(start_date) from {{ ref('stg_experiments') }})
      and {{ known_by_max_date('o.ordered_at') }}
),

unit_orders as (
    select a.experiment_id, a.as_of_date, u.user_id, count(*) as orders, sum(o.revenue) as revenue
    from as_of a
    join units u on u.experiment_id = a.experiment_id and u.assigned_date <= a.as_of_date
    join orders o on o.user_id = u.user_id and o.ordered_at >= u.assigned_at and o.order_date <= a.as_of_date
    group by a.experiment_id, a.as_of_date, u.user_id
),

-- units with no orders count as zeros
unit_values as (
    select
        a.experiment_id,
        a.as_of_date,
        u.variant,
        u.variant = a.control_variant as is_control,
        case when coalesce(uo.orders, 0) > 0 then 1 else 0 end as conversion,
        coalesce(uo.revenue, 0) as revenue_per_user
    from as_of a
    join units u on u.experiment_id = a.experiment_id and u.assigned_date <= a.as_of_date
    left join unit_orders uo
        on uo.experiment_id = a.experiment_id and uo.as_of_date = a.as_of_date and uo.user_id = u.user_id
),

long as (
    select experiment_id, as_of_date, variant, is_control, 'conversion' as metric,
        cast(conversion as decimal(18, 2)) as value
    from unit_values
    union all
    select experiment_id, as_of_date, variant, is_control, 'revenue_per_user' as metric,
        cast(revenue_per_user as decimal(18, 2)) as value
    from unit_values
)

select
    experiment_id,
    variant,
    is_control,
    metric,
    'cumulative' as analysis_window,
    as_of_date,
    count(*) as n,
    cast(sum(value) as double) as value_sum,
    cast(sum(cast(value * value as decimal(38, 4))) as double) as value_sum_sq
from long
group by experiment_id, variant, is_control, metric, as_of_date
