{{ config(pre_hook="{{ delete_partition_range('date') }}") }}

with sessions as (
    select session_id, user_id, session_date as date
    from {{ ref('stg_sessions') }}
    where {{ in_partition_range('started_at') }}
),

completed_orders as (
    select order_id, user_id, session_id, order_date as date, revenue
    from {{ ref('stg_orders') }}
    where is_completed and {{ in_partition_range('ordered_at') }}
),

-- a session converts if it led to a completed order known by the run's end
converting_sessions as (
    select distinct o.session_id
    from {{ ref('stg_orders') }} o
    where o.is_completed and o.session_id is not null and {{ known_by_max_date('o.ordered_at') }}
      and o.ordered_at >= {{ min_date() }}
),

session_kpis as (
    select
        s.date,
        count(distinct s.user_id) as active_users,
        count(*) as sessions,
        count(c.session_id) as converting_sessions
    from sessions s
    left join converting_sessions c on c.session_id = s.session_id
    group by s.date
),

order_kpis as (
    -- money sums in exact decimals: re-runs must give identical marts, and
    -- parallel float sums are not reproducible to the last bit
    select date, count(*) as orders, cast(sum(cast(revenue as decimal(18, 2))) as double) as revenue
    from completed_orders
    group by date
)

select
    coalesce(s.date, o.date) as date,
    coalesce(s.active_users, 0) as active_users,
    coalesce(s.sessions, 0) as sessions,
    coalesce(o.orders, 0) as orders,
    coalesce(o.revenue, 0.0) as revenue,
    case when s.sessions > 0 then s.converting_sessions::double / s.sessions end as conversion_rate
from session_kpis s
full outer join order_kpis o on o.date = s.date
