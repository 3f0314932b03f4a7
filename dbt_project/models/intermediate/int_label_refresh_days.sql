{{ config(
    materialized='table',
    pre_hook="{{ hash_join_build_as_written() }}",
    post_hook="{{ hash_join_build_by_estimate() }}",
) }}

-- The (model_id, date) pairs whose label-based rows (marts.model_health_daily,
-- marts.bias_daily) this run recomputes, listed once for the marts and for
-- the Python assets that re-evaluate over them (alerts, bias windows, OKRs,
-- exports): (a) the run's own days, (b) the label_lookback_days before them,
-- (c) every older prediction day that received a label or feedback during
-- the run, within its model's label horizon. A run's cost follows the labels
-- that arrived, not the horizon.
--
-- labels_as_of: the row's labels (and feedback) are those known by the end of
-- that day, and none arrived for that model and day between it and the run's
-- last day: least(max_date, greatest(date + label_lookback_days, day of the
-- last counted label or feedback)). The last run that recomputes a day, alone
-- or inside a backfill, reaches the same value (the rows do not depend on how
-- days were grouped into runs).

with recent as (
    select distinct model_id, prediction_date as date
    from {{ ref('stg_predictions') }}
    where {{ in_refresh_range('predicted_at', var('label_lookback_days')) }}
),

-- each (model, prediction day)'s label and feedback events stamped inside the run's range and known by
-- max_date, within the model's label horizon: how many, and the last one. Only these events are joined
-- with the predictions (a day's worth at a daily run, not the label horizon's): the hash table is built
-- on them (hash_join_build_as_written; DuckDB's estimates would pick either side).
arrivals as (
    select p.model_id, p.prediction_date as date,
        count(*) as events_arrived,
        max(e.at) as last_event_at
    from {{ ref('stg_predictions') }} p
    join ({{ event_times(min_date()) }}) e on e.prediction_id = p.prediction_id
    where p.predicted_at >= {{ label_scan_start() }}
      and {{ within_label_horizon('e.at', 'p.prediction_date', 'p.model_id') }}
    group by all
),

-- a recent day without arrivals: its last event came before the range (an arrival, when there is one, is
-- later than every event before the range). Joins the events with those days' predictions only: built
-- on them (hash_join_build_as_written), usually none at a daily run.
earlier as (
    select p.model_id, p.prediction_date as date, max(e.at) as last_event_at
    from ({{ event_times(label_scan_start(), before=min_date()) }}) e
    join (
        select p.prediction_id, p.model_id, p.prediction_date
        from {{ ref('stg_predictions') }} p
        {{ semi_join() }} (
            select r.model_id, r.date from recent r
            {{ anti_join() }} arrivals a on a.model_id = r.model_id and a.date = r.date
        ) q on q.model_id = p.model_id and q.date = p.prediction_date
        where p.predicted_at >= {{ label_scan_start() }}
    ) p on p.prediction_id = e.prediction_id
    where {{ within_label_horizon('e.at', 'p.prediction_date', 'p.model_id') }}
    group by all
),

refresh as (
    select coalesce(r.model_id, a.model_id) as model_id,
        coalesce(r.date, a.date) as date,
        case
            when coalesce(r.date, a.date) >= {{ min_date() }} then 'run'
            when r.date is not null then 'recent'
            else 'late_labels'
        end as reason,
        coalesce(a.events_arrived, 0) as events_arrived
    from recent r
    full outer join arrivals a on a.model_id = r.model_id and a.date = r.date
    -- an arrival for a day after the range (a label stamped before its prediction) is not this run's
    where coalesce(r.date, a.date) <= {{ max_date() }}
)

select
    r.model_id,
    r.date,
    r.reason,
    r.events_arrived,
    cast(coalesce(a.last_event_at, e.last_event_at) as date) as last_event_date,
    least({{ max_date() }}, greatest(r.date + {{ var('label_lookback_days') | int }},
                                     coalesce(cast(coalesce(a.last_event_at, e.last_event_at) as date), r.date)))
        as labels_as_of,
    {{ min_date() }} as run_first_day,
    {{ max_date() }} as run_last_day
from refresh r
left join arrivals a on a.model_id = r.model_id and a.date = r.date
left join earlier e on e.model_id = r.model_id and e.date = r.date
