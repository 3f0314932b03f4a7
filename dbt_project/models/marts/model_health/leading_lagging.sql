{{ config(pre_hook="{%- if is_incremental() %}{%- set c = leading_lagging_config() %}"
    ~ "{{ delete_rows_where('as_of_date', label_refreshed_as_of('old.as_of_date', c.window_days + c.max_lag_days)) }}"
    ~ "{% else %}select 1{% endif %}", partition_by=day_partitions('as_of_date')) }}

-- Which leading model-health metric moves before which lagging KPI, and by
-- how long: for every as-of date, the correlation of day-over-day changes,
-- health metric on day t - lag against KPI on day t, over the trailing
-- var('leading_lagging').window_days, for lags 0..max_lag_days.
-- Changes, not levels: two trending series correlate at every lag.
-- Partial on weekday: daily business metrics share a weekly cycle (a
-- weekend's volume moves every rate), and a shared cycle is a common cause,
-- not a lead. Each weekday's mean within the window (by the KPI day's
-- weekday; at a fixed lag the health day's weekday is a constant shift of
-- it) is taken off both changes before correlating them: the partial
-- correlation given weekday dummies.
-- With ~15 lags x every metric x model x KPI searched over a few weeks,
-- |r| of 0.6 arises by chance: each correlation gets a p-value from Fisher's z
-- with an effective sample size (daily changes are autocorrelated: Bartlett's
-- n / (1 + 2 r1x r1y), lag-1 autocorrelations of the demeaned changes) less
-- the weekdays partialled out (sqrt(n_effective - 3 - c), c = weekdays - 1),
-- Holm-adjusted over every correlation searched on the as-of date; only
-- `significant` rows are leads.
-- Health rows keep changing as labels arrive, so each run also recomputes
-- the as-of dates whose windows read a health day it refreshed
-- (int_label_refresh_days).

{%- set cfg = leading_lagging_config() %}

with as_of_dates as (
    select distinct k.date as as_of_date
    from {{ ref('kpi_daily') }} k
    where {{ label_refreshed_as_of('k.date', cfg.window_days + cfg.max_lag_days) }}
),

bounds as (
    select min(as_of_date) - interval {{ cfg.window_days + cfg.max_lag_days }} day as first_day,
           cast(min(as_of_date) - interval {{ cfg.window_days - 1 }} day as date) as window_first,
           max(as_of_date) as last_day
    from as_of_dates
),

-- the live version of each model and day: the one with most predictions
live_health as (
    select * from (
        select h.*,
            row_number() over (partition by h.date, h.model_id order by h.predictions desc, h.model_version asc)
                as live_rank
        from {{ ref('model_health_daily') }} h, bounds b
        where h.date between b.first_day and b.last_day
    ) as ranked
    where live_rank = 1
),

max_psi as (
    select d.date, d.model_id, max(d.psi) as max_psi
    from {{ ref('feature_drift_daily') }} d
    join live_health h on h.date = d.date and h.model_id = d.model_id and h.model_version = d.model_version
    group by all
),

health_levels as (
    {%- for metric in cfg.health_metrics %}
    select h.date, h.model_id, '{{ metric }}' as health_metric,
        {% if metric == 'max_psi' %}p.max_psi{% else %}h.{{ metric }}{% endif %} as value
    from live_health h
    {%- if metric == 'max_psi' %}
    left join max_psi p on p.date = h.date and p.model_id = h.model_id
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

kpi_levels as (
    {%- for kpi in cfg.kpis %}
    select k.date, '{{ kpi }}' as kpi, k.{{ kpi }} as value
    from {{ ref('kpi_daily') }} k, bounds b
    where k.date between b.first_day and b.last_day
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

health_changes as (
    select date, model_id, health_metric,
        value - lag(value) over (partition by model_id, health_metric order by date) as change
    from health_levels
),

kpi_changes as (
    select date, kpi, value - lag(value) over (partition by kpi order by date) as change
    from kpi_levels
),

lags as (select lag_days from {{ integer_rows(range(cfg.max_lag_days + 1) | list, 'lag_days') }} as l),

-- One row per KPI day and lag (not per as-of date and window day: a year's backfill would expand each day
-- window_days times): the KPI's change that day and the health metric's change lag_days before it, both
-- known or neither.
day_pairs as (
    select h.model_id, h.health_metric, k.kpi, l.lag_days, k.date as day,
        case when k.change is not null then h.change end as x_raw,
        case when h.change is not null then k.change end as y_raw
    from kpi_changes k
    cross join lags l
    cross join bounds b
    join health_changes h on h.date = k.date - cast(l.lag_days as integer)
    where k.date >= b.window_first
),

-- every day of the windows: a window is then the window_days rows up to its as-of date
calendar as (
    select day from {{ days_of_bounds('window_first', 'last_day', 'day', 'bounds') }} as d
),

-- slot: the weekday, numbered so that the day before's is (slot + 6) % 7 on both engines (DuckDB's dayofweek is
-- 0-6 from Sunday, Spark's 1-7), and the same whatever the run's first day (the sums over the slots below are
-- added in slot order: a backfill and daily runs must add them alike)
grid as (
    select g.model_id, g.health_metric, g.kpi, g.lag_days, c.day, dayofweek(c.day) % 7 as slot,
        p.day is not null as paired_day, p.x_raw, p.y_raw
    from (select distinct model_id, health_metric, kpi, lag_days from day_pairs) as g
    cross join calendar c
    left join day_pairs p
        on p.model_id = g.model_id and p.health_metric = g.health_metric and p.kpi = g.kpi
        and p.lag_days = g.lag_days and p.day = c.day
),

-- the day before's pair (the grid has every day): consecutive pairs give the lag-1 autocorrelations
with_prev as (
    select *,
        case when x_raw is not null then lag(x_raw) over d end as x_prev,
        case when y_raw is not null then lag(y_raw) over d end as y_prev
    from grid
    window d as (partition by model_id, health_metric, kpi, lag_days order by day)
),

-- Each as-of date's window as sums over its rows, per weekday slot where the weekday means enter: the
-- correlation partial on weekday is that of each change less its weekday's mean over the window's pairs,
-- and the sums of those residuals follow from these (below). Exact sums, as elsewhere: a double sum's last
-- bits vary with the order it is added in, and a backfill would differ from daily runs.
window_sums as (
    select model_id, health_metric, kpi, lag_days, day as as_of_date,
        count(case when paired_day then 1 end) over w as paired_days,
        {%- for s in range(7) %}
        count(case when slot = {{ s }} then x_raw end) over w as n_{{ s }},
        cast({{ exact_partial_sum('x_raw', 18, where='slot = ' ~ s) }} over w as double) as sx_{{ s }},
        cast({{ exact_partial_sum('y_raw', 18, where='slot = ' ~ s) }} over w as double) as sy_{{ s }},
        -- consecutive pairs ending on a slot-{{ s }} day (both inside the window): count, today's and the
        -- day before's changes
        count(case when slot = {{ s }} then x_prev end) over w1 as c_{{ s }},
        cast({{ exact_partial_sum('x_raw', 18, where='slot = ' ~ s ~ ' and x_prev is not null') }} over w1 as double)
            as bx_{{ s }},
        cast({{ exact_partial_sum('x_prev', 18, where='slot = ' ~ s) }} over w1 as double) as dx_{{ s }},
        cast({{ exact_partial_sum('y_raw', 18, where='slot = ' ~ s ~ ' and y_prev is not null') }} over w1 as double)
            as by_{{ s }},
        cast({{ exact_partial_sum('y_prev', 18, where='slot = ' ~ s) }} over w1 as double) as dy_{{ s }},
        {%- endfor %}
        cast({{ exact_partial_sum('x_raw * x_raw', 18) }} over w as double) as sxx_raw,
        cast({{ exact_partial_sum('y_raw * y_raw', 18) }} over w as double) as syy_raw,
        cast({{ exact_partial_sum('x_raw * y_raw', 18) }} over w as double) as sxy_raw,
        cast({{ exact_partial_sum('x_raw * x_prev', 18) }} over w1 as double) as ax,
        cast({{ exact_partial_sum('y_raw * y_prev', 18) }} over w1 as double) as ay
    from with_prev
    window w as (partition by model_id, health_metric, kpi, lag_days order by day
                 rows between {{ cfg.window_days - 1 }} preceding and current row),
        w1 as (partition by model_id, health_metric, kpi, lag_days order by day
               rows between {{ cfg.window_days - 2 }} preceding and current row)
),

-- the weekday means of the window (none for a weekday without pairs)
window_means as (
    select s.*
        {%- for s in range(7) %},
        sx_{{ s }} / nullif(n_{{ s }}, 0) as mx_{{ s }}, sy_{{ s }} / nullif(n_{{ s }}, 0) as my_{{ s }}
        {%- endfor %}
    from window_sums s
    join as_of_dates a on a.as_of_date = s.as_of_date
    where s.paired_days > 0
),

-- Sums of the residuals r = v - mean(weekday): sum r^2 = sum v^2 - sum_w S_w^2 / n_w, and over consecutive
-- days sum r_t r_t-1 = sum v_t v_t-1 - sum_w (m_w-1 B_w + m_w D_w - C_w m_w m_w-1) (B_w, D_w: today's and the
-- day before's sums over the C_w pairs ending on weekday w, whose previous weekday is w-1). The residuals sum
-- to 0, so their mean drops out of the correlation and the autocorrelations.
residual_sums as (
    select *,
        sxx_raw
        {%- for s in range(7) %}
            - coalesce(sx_{{ s }} * mx_{{ s }}, 0)
        {%- endfor %} as sxx,
        syy_raw
        {%- for s in range(7) %}
            - coalesce(sy_{{ s }} * my_{{ s }}, 0)
        {%- endfor %} as syy,
        sxy_raw
        {%- for s in range(7) %}
            - coalesce(sx_{{ s }} * my_{{ s }}, 0)
        {%- endfor %} as sxy,
        {%- for v in ('x', 'y') %}
        a{{ v }}
        {%- for s in range(7) %}{% set p = (s + 6) % 7 %}
            - case when c_{{ s }} > 0 then m{{ v }}_{{ p }} * b{{ v }}_{{ s }} + m{{ v }}_{{ s }} * d{{ v }}_{{ s }}
                - c_{{ s }} * m{{ v }}_{{ s }} * m{{ v }}_{{ p }} else 0 end
        {%- endfor %} as s{{ v }}_lag1{{ ',' if not loop.last }}
        {%- endfor %}
    from window_means
),

pairs as (
    select as_of_date, model_id, health_metric, kpi, lag_days,
        n_0
        {%- for s in range(1, 7) %}
            + n_{{ s }}
        {%- endfor %} as n_days,
        -- the weekday dummies partialled out: one per weekday among the pairs, less the intercept
        -1
        {%- for s in range(7) %}
            + case when n_{{ s }} > 0 then 1 else 0 end
        {%- endfor %} as n_controls,
        -- a constant series (no variance left beyond its weekday means, or rounding of them) has no correlation
        case when sxx > 1e-12 * sxx_raw and syy > 1e-12 * syy_raw then sxy / sqrt(sxx * syy) end as r,
        -- the sample autocorrelation at lag 1 (as statsmodels' acf): sum over consecutive days of r_t r_t-1
        -- / sum r^2
        sx_lag1 / nullif(sxx, 0) as x_autocorrelation,
        sy_lag1 / nullif(syy, 0) as y_autocorrelation
    from residual_sums
),

tested as (
    select *,
        -- too few days is noise
        case when n_days >= {{ cfg.min_days }} and {{ is_finite('r') }} then r end as correlation,
        -- Bartlett: Var(r) ~ (1 + 2 r1x r1y) / n; never more days than observed (a conservative cap)
        n_days / greatest(1, 1 + 2 * coalesce(x_autocorrelation, 0) * coalesce(y_autocorrelation, 0)) as n_effective
    from pairs
),

fisher as (
    -- |Fisher z| / sqrt(2) = |atanh(r)| sqrt(n_effective - 3 - c) / sqrt(2), c = n_controls (a partial
    -- correlation's degrees of freedom); none when the controls leave too few pairs, or under three pairs a
    -- weekday (two a weekday demean one spike into two high-leverage points: a lead of one event);
    -- r = +-1 is certainly not chance
    select *, case when correlation is not null and n_effective - 3 - n_controls > 0
            and n_days >= 3 * (n_controls + 1)
        then least(
            abs(atanh(greatest(least(correlation, 1 - 1e-15), -1 + 1e-15))) * sqrt(n_effective - 3 - n_controls),
            37
        ) / sqrt(2)
        end as u
    from tested
),

p_values as (
    -- two-sided p = erfc(u), by Numerical Recipes' erfcc (relative error < 1.2e-7; DuckDB has no erf)
    select *, t * exp(-u * u - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))))) as p_value
    from (select *, 1 / (1 + 0.5 * u) as t from fisher) as with_t
),

-- Holm over the whole search of the as-of date (models x health metrics x KPIs x lags):
-- the k-th smallest p times (m - k + 1), made monotone
holm as (
    select *,
        count(p_value) over (partition by as_of_date) as family_size,
        row_number() over (partition by as_of_date
                           order by p_value nulls last, model_id, health_metric, kpi, lag_days) as p_rank
    from p_values
),

adjusted as (
    select *, case when p_value is not null then max(least(1, (family_size - p_rank + 1) * p_value)) over (
        partition by as_of_date order by p_value nulls last, model_id, health_metric, kpi, lag_days
        rows between unbounded preceding and current row) end as p_value_adjusted
    from holm
)

select as_of_date, model_id, health_metric, kpi, cast(lag_days as integer) as lag_days,
    correlation,
    cast(n_days as integer) as n_days,
    case when correlation is not null then n_effective end as n_effective,
    case when correlation is not null then p_value end as p_value,
    case when correlation is not null then p_value_adjusted end as p_value_adjusted,
    cast(family_size as integer) as family_size,
    coalesce(correlation is not null and p_value_adjusted < {{ cfg.get('alpha', 0.01) }}, false) as significant,
    coalesce(correlation is not null
        and row_number() over (
            partition by as_of_date, model_id, health_metric, kpi
            order by (correlation is not null) desc, abs(correlation) desc nulls last, lag_days
        ) = 1, false) as is_best_lag
from adjusted
