{{ config(pre_hook="{{ delete_partition_range('date') }}") }}

-- Drift of every monitored feature (and the score) per day, model and
-- version against the version's reference window (int_model_versions: per
-- model from the project file, fixed dates or the version's first
-- reference_days days, default 7). Numeric: PSI over 10 bins cut at the
-- reference deciles (quantile_cont); categorical: PSI over categories. A bin
-- or category empty on either side counts as 1e-4. PSI is null until the
-- reference window is complete. null_rate counts nulls among all rows.

{%- set psi_floor = 0.0001 %}

with versions as (
    select model_id, model_version, reference_start_date, reference_end_date
    from {{ ref('int_model_versions') }}
),

current_predictions as (
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} p
    where {{ in_partition_range('p.predicted_at') }}
),

reference_predictions as (
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} p
    join versions v
        on v.model_id = p.model_id and v.model_version = p.model_version
       and p.prediction_date between v.reference_start_date and v.reference_end_date
    join (select distinct model_id, model_version from current_predictions) c
        on c.model_id = p.model_id and c.model_version = p.model_version
),

current_numeric as ({{ features_long('current_predictions', true) }}),
reference_numeric as ({{ features_long('reference_predictions', true) }}),
current_categorical as ({{ features_long('current_predictions', false) }}),
reference_categorical as ({{ features_long('reference_predictions', false) }}),

edges as (
    select model_id, model_version, feature,
        quantile_cont(value, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) as edges,
        count(value) as reference_rows
    from reference_numeric
    group by model_id, model_version, feature
),

-- bin = how many reference deciles the value exceeds (0..9)
reference_bins as (
    select r.model_id, r.model_version, r.feature, cast(len(list_filter(e.edges, x -> r.value > x)) as varchar) as bucket,
        count(*) as n
    from reference_numeric r
    join edges e on e.model_id = r.model_id and e.model_version = r.model_version and e.feature = r.feature
    where r.value is not null
    group by all
    union all
    select model_id, model_version, feature, value as bucket, count(*) as n
    from reference_categorical
    where value is not null
    group by all
),

current_bins as (
    select c.date, c.model_id, c.model_version, c.feature, cast(len(list_filter(e.edges, x -> c.value > x)) as varchar) as bucket,
        count(*) as n
    from current_numeric c
    join edges e on e.model_id = c.model_id and e.model_version = c.model_version and e.feature = c.feature
    where c.value is not null
    group by all
    union all
    select date, model_id, model_version, feature, value as bucket, count(*) as n
    from current_categorical
    where value is not null
    group by all
),

current_totals as (
    select date, model_id, model_version, feature, 'numeric' as feature_type,
        count(*) as rows_total, count(value) as rows_non_null
    from current_numeric group by all
    union all
    select date, model_id, model_version, feature, 'categorical' as feature_type,
        count(*) as rows_total, count(value) as rows_non_null
    from current_categorical group by all
),

reference_totals as (
    select model_id, model_version, feature, sum(n) as rows_non_null
    from reference_bins group by all
),

-- every bucket seen on either side, for every day being scored
buckets as (
    select t.date, t.model_id, t.model_version, t.feature, b.bucket
    from current_totals t
    join (
        select model_id, model_version, feature, bucket from reference_bins
        union
        select model_id, model_version, feature, bucket from current_bins
    ) b on b.model_id = t.model_id and b.model_version = t.model_version and b.feature = t.feature
    where t.feature_type = 'categorical' or b.bucket in ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
),

shares as (
    select b.date, b.model_id, b.model_version, b.feature,
        case when coalesce(c.n, 0) = 0 then {{ psi_floor }} else c.n::double / t.rows_non_null end as current_share,
        case when coalesce(r.n, 0) = 0 then {{ psi_floor }} else r.n::double / rt.rows_non_null end as reference_share
    from buckets b
    join current_totals t on t.date = b.date and t.model_id = b.model_id and t.model_version = b.model_version and t.feature = b.feature
    join reference_totals rt on rt.model_id = b.model_id and rt.model_version = b.model_version and rt.feature = b.feature
    left join current_bins c on c.date = b.date and c.model_id = b.model_id and c.model_version = b.model_version
        and c.feature = b.feature and c.bucket = b.bucket
    left join reference_bins r on r.model_id = b.model_id and r.model_version = b.model_version
        and r.feature = b.feature and r.bucket = b.bucket
),

psi as (
    select date, model_id, model_version, feature,
        {{ exact_sum('(current_share - reference_share) * ln(current_share / reference_share)') }} as psi
    from shares
    group by all
)

select
    t.date,
    t.model_id,
    t.model_version,
    t.feature,
    t.feature_type,
    t.rows_total,
    1 - t.rows_non_null::double / nullif(t.rows_total, 0) as null_rate,
    case when t.date > v.reference_end_date then p.psi end as psi,
    t.date > v.reference_end_date as reference_complete,
    v.reference_start_date,
    v.reference_end_date
from current_totals t
join versions v on v.model_id = t.model_id and v.model_version = t.model_version
left join psi p on p.date = t.date and p.model_id = t.model_id and p.model_version = t.model_version and p.feature = t.feature
