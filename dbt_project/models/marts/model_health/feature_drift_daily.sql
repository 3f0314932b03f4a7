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
-- Pooled drift (pooled_*): the same PSI and the chi-square statistic of
-- homogeneity of the bin counts against the reference's, over the version's
-- days of the last psi_pool_days calendar days (the day's included; the
-- project file's alerts.rules.psi.pool_days, default 7): the bins' counts of
-- those days summed. The PSI alert judges it on days too small alone.

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
),

-- each day's bins summed over the version's days of its pool window (earlier days: the stored bins)
pooled_bins as (
    select d.date, d.model_id, d.model_version, d.feature, b.bin,
        sum(b.current_count) as current_count, max(b.reference_count) as reference_count
    from (
        select distinct date, model_id, model_version, feature
        from {{ ref('feature_drift_bins') }}
        where {{ in_partition_range('date') }}
    ) as d
    inner join {{ ref('feature_drift_bins') }} as b
        on
            d.model_id = b.model_id and d.model_version = b.model_version and d.feature = b.feature
            and b.date <= d.date
            and b.date > d.date - {{ model_setting('d.model_id', 'psi_pool_days', var('default_psi_pool_days') | int) }}
    group by d.date, d.model_id, d.model_version, d.feature, b.bin
),

-- each bin's share of its side's values, an empty one at the floor (for PSI), and the raw counts (chi-square)
pooled_sides as (
    select *,
        case when current_count = 0 then {{ psi_floor }} else current_count / pooled_values end as current_share,
        case when reference_count = 0 then {{ psi_floor }} else reference_count / reference_values end
            as reference_share
    from (
        select *,
            cast(sum(current_count) over side as double) as pooled_values,
            cast(sum(reference_count) over side as double) as reference_values
        from pooled_bins
        window side as (partition by date, model_id, model_version, feature)
    ) as sides
    where pooled_values > 0 and reference_values > 0
),

-- chi-square as alerts.DRIFT_SQL's of a day: C R sum((c/C - r/R)^2 / (c + r)) over the bins either side holds,
-- on pooled_bins - 1 degrees of freedom
pooled as (
    select date, model_id, model_version, feature,
        cast(pooled_values as bigint) as pooled_values,
        {{ exact_sum('(current_share - reference_share) * ln(current_share / reference_share)') }} as pooled_psi,
        pooled_values * reference_values * {{ exact_sum(
            'power(current_count / pooled_values - reference_count / reference_values, 2) / (current_count + reference_count)',
            where='current_count + reference_count > 0'
        ) }} as pooled_chi2,
        {{ count_where('current_count + reference_count > 0') }} as pooled_bins
    from pooled_sides
    group by date, model_id, model_version, feature, pooled_values, reference_values
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
    v.reference_end_date,
    -- pooled only on a day with values of its own: a day without adds no evidence (nor a renamed column's day)
    case when t.rows_non_null > 0 then o.pooled_values end as pooled_values,
    case when t.rows_non_null > 0 then o.pooled_psi end as pooled_psi,
    case when t.rows_non_null > 0 then o.pooled_chi2 end as pooled_chi2,
    case when t.rows_non_null > 0 then o.pooled_bins end as pooled_bins
from current_totals as t
inner join versions as v on t.model_id = v.model_id and t.model_version = v.model_version
left join psi as p
    on t.date = p.date and t.model_id = p.model_id and t.model_version = p.model_version and t.feature = p.feature
left join pooled as o
    on t.date = o.date and t.model_id = o.model_id and t.model_version = o.model_version and t.feature = o.feature
left join known_features as k
    on t.model_id = k.model_id and t.model_version = k.model_version and t.feature = k.feature
-- a feature the version never has (another model's: no value today, none in its reference) is no row of its own:
-- three models over one predictions table gave 518 of 728 rows null_rate 1 and no PSI; a feature that went
-- missing (values in the reference) keeps its row, null_rate 1 its news
where t.rows_non_null > 0 or k.feature is not null
