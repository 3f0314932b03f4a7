{{ config(pre_hook="{%- if is_incremental() %}{%- set c = leading_lagging_config() %}delete from {{ this }} as old where {{ label_refreshed_as_of('old.as_of_date', c.window_days + c.max_lag_days) }}{% else %}select 1{% endif %}") }}

-- Which leading model-health metric moves before which lagging KPI, and by
-- how long: for every as-of date, the Pearson correlation of day-over-day
-- changes, health metric on day t - lag against KPI on day t, over the
-- trailing var('leading_lagging').window_days, for lags 0..max_lag_days.
-- Changes, not levels: two trending series correlate at every lag.
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
    select h.*
    from {{ ref('model_health_daily') }} h, bounds b
    where h.date between b.first_day and b.last_day
    qualify row_number() over (partition by h.date, h.model_id order by h.predictions desc, h.model_version) = 1
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

lags as (select range as lag_days from range(0, {{ cfg.max_lag_days + 1 }})),

-- a pair of changes counts when both are known
paired as (
    select a.as_of_date, h.model_id, h.health_metric, k.kpi, l.lag_days,
        case when k.change is not null then h.change end as x,
        case when h.change is not null then k.change end as y
    from as_of_dates a
    cross join lags l
    join kpi_changes k
        on k.date between a.as_of_date - interval {{ cfg.window_days - 1 }} day and a.as_of_date
    join health_changes h on h.date = k.date - cast(l.lag_days as integer)
),

-- Pearson r from exact sums: corr() sums doubles in parallel, and its last
-- bits would differ between a backfill and daily runs.
pair_sums as (
    select as_of_date, model_id, health_metric, kpi, lag_days,
        count(x) as n_days,
        {{ exact_sum('x', 18) }} as sx, {{ exact_sum('y', 18) }} as sy,
        {{ exact_sum('x * x', 18) }} as sxx, {{ exact_sum('y * y', 18) }} as syy,
        {{ exact_sum('x * y', 18) }} as sxy
    from paired
    group by all
),

pairs as (
    select *, (n_days * sxy - sx * sy)
        -- a constant series (zero variance, or rounding just below it) has no correlation
        / sqrt(nullif(greatest(n_days * sxx - sx * sx, 0) * greatest(n_days * syy - sy * sy, 0), 0)) as correlation
    from pair_sums
)

select as_of_date, model_id, health_metric, kpi, cast(lag_days as integer) as lag_days,
    -- too few days is noise
    case when n_days >= {{ cfg.min_days }} and isfinite(correlation) then correlation end as correlation,
    cast(n_days as integer) as n_days,
    coalesce(n_days >= {{ cfg.min_days }} and isfinite(correlation)
        and row_number() over (
            partition by as_of_date, model_id, health_metric, kpi
            order by (n_days >= {{ cfg.min_days }} and isfinite(correlation)) desc nulls last,
                     abs(correlation) desc nulls last, lag_days
        ) = 1, false) as is_best_lag
from pairs
