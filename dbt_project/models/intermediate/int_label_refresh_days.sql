{{ config(materialized='table') }}

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

-- each (model, prediction day)'s label and feedback events known by max_date,
-- within the model's label horizon: how many were stamped inside the run's
-- range, and the last one. One join of the events with the predictions serves
-- both (the refreshed days' rows are picked at the end).
event_days as (
    select p.model_id, p.prediction_date as date,
        cast({{ count_where('e.at >= ' ~ min_date()) }} as bigint) as events_arrived,
        max(e.at) as last_event_at
    from (
        select prediction_id, labeled_at as at from {{ ref('stg_labels') }}
        where labeled_at >= {{ label_scan_start() }} and {{ known_by_max_date('labeled_at') }}
        union all
        select prediction_id, created_at from {{ ref('stg_feedback') }}
        where created_at >= {{ label_scan_start() }} and {{ known_by_max_date('created_at') }}
    ) e
    join {{ ref('stg_predictions') }} p on p.prediction_id = e.prediction_id
    where p.predicted_at >= {{ label_scan_start() }}
      and {{ within_label_horizon('e.at', 'p.prediction_date', 'p.model_id') }}
    group by all
),

arrivals as (
    select model_id, date, events_arrived
    from event_days
    where events_arrived > 0
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
    cast(l.last_event_at as date) as last_event_date,
    least({{ max_date() }}, greatest(r.date + {{ var('label_lookback_days') | int }},
                                     coalesce(cast(l.last_event_at as date), r.date))) as labels_as_of,
    {{ min_date() }} as run_first_day,
    {{ max_date() }} as run_last_day
from refresh r
left join event_days l on l.model_id = r.model_id and l.date = r.date
