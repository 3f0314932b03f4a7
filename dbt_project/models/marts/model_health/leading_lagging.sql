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

-- a pair of changes counts when both are known
paired as (
    select a.as_of_date, h.model_id, h.health_metric, k.kpi, l.lag_days, k.date as day,
        dayofweek(k.date) as weekday,
        case when k.change is not null then h.change end as x_raw,
        case when h.change is not null then k.change end as y_raw
    from as_of_dates a
    cross join lags l
    join kpi_changes k
        on k.date between a.as_of_date - interval {{ cfg.window_days - 1 }} day and a.as_of_date
    join health_changes h on h.date = k.date - cast(l.lag_days as integer)
),

-- partial on weekday: each change less its weekday's mean over the window's pairs (the
-- KPI day's weekday; at a fixed lag the health day's is a constant shift of it). The
-- means are exact sums, as below: a double sum's last bits vary between runs.
demeaned as (
    select *,
        x_raw - cast(sum(cast(x_raw as decimal(38, 18))) over wd as double) / count(x_raw) over wd as x,
        y_raw - cast(sum(cast(y_raw as decimal(38, 18))) over wd as double) / count(y_raw) over wd as y
    from paired
    window wd as (partition by as_of_date, model_id, health_metric, kpi, lag_days, weekday)
),

-- each pair beside the previous day's (both known): lag-1 autocorrelations
paired_prev as (
    select *,
        case when lag(day) over w = day - interval 1 day and lag(x) over w is not null and x is not null
            then lag(x) over w end as x_prev,
        case when lag(day) over w = day - interval 1 day and lag(y) over w is not null and y is not null
            then lag(y) over w end as y_prev
    from demeaned
    window w as (partition by as_of_date, model_id, health_metric, kpi, lag_days order by day)
),

-- Pearson r of the demeaned changes from exact sums: corr() sums doubles in
-- parallel, and its last bits would differ between a backfill and daily runs.
pair_sums as (
    select as_of_date, model_id, health_metric, kpi, lag_days,
        count(x) as n_days,
        -- the weekday dummies partialled out: one per weekday among the pairs, less the intercept
        count(distinct case when x is not null then weekday end) - 1 as n_controls,
        {{ exact_sum('x', 18) }} as sx, {{ exact_sum('y', 18) }} as sy,
        {{ exact_sum('x * x', 18) }} as sxx, {{ exact_sum('y * y', 18) }} as syy,
        {{ exact_sum('x * y', 18) }} as sxy,
        -- consecutive pairs: count, the sums of today's and yesterday's values, and of their products
        count(x_prev) as n_consecutive,
        {{ exact_sum('case when x_prev is not null then x end', 18) }} as sx_today,
        {{ exact_sum('x_prev', 18) }} as sx_prev, {{ exact_sum('x * x_prev', 18) }} as sx_lag1,
        {{ exact_sum('case when y_prev is not null then y end', 18) }} as sy_today,
        {{ exact_sum('y_prev', 18) }} as sy_prev, {{ exact_sum('y * y_prev', 18) }} as sy_lag1
    from paired_prev
    group by all
),

pairs as (
    select *, (n_days * sxy - sx * sy)
        -- a constant series (zero variance, or rounding just below it) has no correlation
        / sqrt(nullif(greatest(n_days * sxx - sx * sx, 0) * greatest(n_days * syy - sy * sy, 0), 0)) as r,
        -- the sample autocorrelation at lag 1 (as statsmodels' acf): sum over consecutive days of
        -- (v_t - mean)(v_t-1 - mean) / sum over all days of (v_t - mean)^2
        (sx_lag1 - sx / n_days * (sx_today + sx_prev) + n_consecutive * (sx / n_days) * (sx / n_days))
            / nullif(sxx - sx * sx / n_days, 0) as x_autocorrelation,
        (sy_lag1 - sy / n_days * (sy_today + sy_prev) + n_consecutive * (sy / n_days) * (sy / n_days))
            / nullif(syy - sy * sy / n_days, 0) as y_autocorrelation
    from pair_sums
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
