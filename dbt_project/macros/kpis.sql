{# Lagging business KPIs per day, optionally split by user attributes
   (`dimensions`, e.g. ['segment', 'country']). One definition serves
   marts.kpi_daily and marts.kpi_daily_by_segment. A session converts with a
   completed order of its day or a later one (one late on day d with an order
   after midnight; a reply days after an email): every run recomputes
   var('kpi_lookback_days') days before its range too (the project file's,
   init writes the orders' longest lag), and a day's numbers settle once the
   runs of that many days after it have run (then identical in a backfill and
   in daily runs). #}
{% macro kpi_select(dimensions=[]) %}
{%- set user_cols -%}{% for d in dimensions %}, coalesce(u.{{ d }}, 'unknown') as {{ d }}{% endfor %}{%- endset -%}
{%- set user_join -%}{% if dimensions %}left join {{ ref('stg_users') }} u on u.user_id = x.user_id{% endif %}{%- endset -%}
{%- set group_cols -%}date{% for d in dimensions %}, {{ d }}{% endfor %}{%- endset -%}
with sessions as (
    select x.session_id, x.user_id, x.session_date as date {{ user_cols }}
    from {{ ref('stg_sessions') }} x
    {{ user_join }}
    where {{ in_refresh_range('x.started_at', var('kpi_lookback_days')) }}
),

orders as (
    select x.order_id, x.order_date as date, x.status,
        -- exact decimals: parallel float sums are not reproducible to the last bit
        cast(x.revenue as decimal(18, 2)) as revenue
        {{ user_cols }}
    from {{ ref('stg_orders') }} x
    {{ user_join }}
    where {{ in_refresh_range('x.ordered_at', var('kpi_lookback_days')) }}
),

-- a session converts if it led to a completed order known by the run's end
converting_sessions as (
    select distinct session_id
    from {{ ref('stg_orders') }}
    where is_completed and session_id is not null
      and ordered_at >= {{ refresh_start(var('kpi_lookback_days')) }} and {{ known_by_max_date('ordered_at') }}
),

session_kpis as (
    select {{ group_cols }},
        count(distinct s.user_id) as active_users,
        count(*) as sessions,
        count(c.session_id) as converting_sessions
    from sessions s
    left join converting_sessions c on c.session_id = s.session_id
    group by {{ group_cols }}
),

order_kpis as (
    select {{ group_cols }},
        {{ count_where("status = 'completed'") }} as orders,
        {{ count_where("status = 'refunded'") }} as refunded_orders,
        coalesce(sum(case when status = 'completed' then revenue end), 0) as revenue
    from orders
    group by {{ group_cols }}
),

joined as (
    select
        coalesce(s.date, o.date) as date,
        {% for d in dimensions %}coalesce(s.{{ d }}, o.{{ d }}) as {{ d }},
        {% endfor -%}
        coalesce(s.active_users, 0) as active_users,
        coalesce(s.sessions, 0) as sessions,
        coalesce(s.converting_sessions, 0) as converting_sessions,
        coalesce(o.orders, 0) as orders,
        coalesce(o.refunded_orders, 0) as refunded_orders,
        cast(coalesce(o.revenue, 0) as double) as revenue
    from session_kpis s
    full outer join order_kpis o on o.date = s.date {% for d in dimensions %}and o.{{ d }} = s.{{ d }} {% endfor %}
)

select
    *,
    converting_sessions::double / nullif(sessions, 0) as conversion_rate,
    revenue / nullif(active_users, 0) as revenue_per_active_user,
    revenue / nullif(orders, 0) as average_order_value,
    refunded_orders::double / nullif(orders + refunded_orders, 0) as refund_rate
from joined j
-- a day whose orders or sessions a failed gate held back, or no gate judged (never loaded), has no KPIs (0 orders
-- would read as a collapse)
where {{ not_held_back('orders', 'j.date') }} and {{ not_held_back('sessions', 'j.date') }}
    and {{ gate_judged('orders', 'j.date') }} and {{ gate_judged('sessions', 'j.date') }}
{% endmacro %}
