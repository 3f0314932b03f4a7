{{ config(pre_hook="{{ delete_partition_range('date') }}", partition_by=day_partitions('date')) }}

-- Drift of every monitored feature (and the score) per day, model and
-- version against the version's reference window (int_model_versions: per
-- model from the project file, fixed dates or the version's first
-- reference_days days, default 7). Numeric: PSI over 10 bins cut at the
-- reference deciles (quantile_cont); categorical: PSI over categories. A bin
-- or category empty on either side counts as 1e-4. PSI is null until the
-- reference window is complete. null_rate counts nulls among all rows.
-- The bins and their shares (the reference side stored once per version in
-- int_reference_profiles) are marts.feature_drift_bins': a run reads only
-- its own days of predictions.

{%- set psi_floor = 0.0001 %}

with versions as (
    select model_id, model_version, reference_start_date, reference_end_date
    from {{ ref('int_model_versions') }}
),

current_predictions as (
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} as p
    where {{ in_partition_range('p.predicted_at') }}
),

current_totals as (
    {{ feature_counts('current_predictions') }}
),

-- the bins and their shares are feature_drift_bins' (of this run's days); an empty bin counts as the floor
floored as (
    select date, model_id, model_version, feature,
        case when current_count = 0 then {{ psi_floor }} else current_share end as current_share,
        case when reference_count = 0 then {{ psi_floor }} else reference_share end as reference_share
    from {{ ref('feature_drift_bins') }}
    where {{ in_partition_range('date') }}
),

known_features as (
    select distinct model_id, model_version, feature
    from {{ ref('int_reference_profiles') }}
    where reference_count > 0
),

psi as (
    select date, model_id, model_version, feature,
        {{ exact_sum('(current_share - reference_share) * ln(current_share / reference_share)') }} as psi
    from floored
    group by date, model_id, model_version, feature
)

select
    t.date,
    t.model_id,
    t.model_version,
    t.feature,
    t.feature_type,
    t.rows_total,
    1 - cast(t.rows_non_null as double) / nullif(t.rows_total, 0) as null_rate,
    -- no value today (a column renamed upstream): no PSI, not the empty bins' floor (a trial's 7.67)
    case when t.date > v.reference_end_date and t.rows_non_null > 0 then p.psi end as psi,
    t.date > v.reference_end_date as reference_complete,
    v.reference_start_date,
    v.reference_end_date
from current_totals as t
inner join versions as v on t.model_id = v.model_id and t.model_version = v.model_version
left join psi as p
    on t.date = p.date and t.model_id = p.model_id and t.model_version = p.model_version and t.feature = p.feature
left join known_features as k
    on t.model_id = k.model_id and t.model_version = k.model_version and t.feature = k.feature
-- a feature the version never has (another model's: no value today, none in its reference) is no row of its own:
-- three models over one predictions table gave 518 of 728 rows null_rate 1 and no PSI; a feature that went
-- missing (values in the reference) keeps its row, null_rate 1 its news
where t.rows_non_null > 0 or k.feature is not null
