{{ config(pre_hook="{{ delete_partition_range('date') }}", partition_by=day_partitions('date')) }}

-- Drift of every monitored feature (and the score) per day, model and
-- version against the version's reference window (int_model_versions: per
-- model from the project file, fixed dates or the version's first
-- reference_days days, default 7). Numeric: PSI over 10 bins cut at the
-- reference deciles (quantile_cont); categorical: PSI over categories. A bin
-- or category empty on either side counts as 1e-4. PSI is null until the
-- reference window is complete. null_rate counts nulls among all rows.
-- The reference side is stored once per version (int_reference_profiles):
-- a run reads only its own days of predictions.

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

profiles as (
    select model_id, model_version, feature, feature_type, bin, lower_edge, reference_count, reference_rows
    from {{ ref('int_reference_profiles') }}
),

current_numeric as ({{ features_long('current_predictions', true) }}),

current_categorical as ({{ features_long('current_predictions', false) }}),

-- the reference deciles of each numeric feature again as one row (bin k's lower edge is edge_k)
edges as (
    select
        model_id,
        model_version,
        feature,
        {%- for i in range(1, 10) %}
        max(case when bin = '{{ i }}' then lower_edge end) as edge_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
    from profiles
    where feature_type = 'numeric'
    group by model_id, model_version, feature
),

-- bin = how many reference deciles the value exceeds (0..9)
reference_bins as (
    select model_id, model_version, feature, bin as bucket, reference_count as n
    from profiles
    where reference_count > 0
),

current_bins as (
    select c.date, c.model_id, c.model_version, c.feature,
        cast({{ decile_bin('c.value', 'e') }} as {{ dbt.type_string() }}) as bucket,
        count(*) as n
    from current_numeric as c
    inner join edges as e on c.model_id = e.model_id and c.model_version = e.model_version and c.feature = e.feature
    where c.value is not null
    group by c.date, c.model_id, c.model_version, c.feature, {{ decile_bin('c.value', 'e') }}
    union all
    select date, model_id, model_version, feature, value as bucket, count(*) as n
    from current_categorical
    where value is not null
    group by date, model_id, model_version, feature, value
),

current_totals as (
    select date, model_id, model_version, feature, 'numeric' as feature_type,
        count(*) as rows_total, count(value) as rows_non_null
    from current_numeric
    group by date, model_id, model_version, feature
    union all
    select date, model_id, model_version, feature, 'categorical' as feature_type,
        count(*) as rows_total, count(value) as rows_non_null
    from current_categorical
    group by date, model_id, model_version, feature
),

reference_totals as (
    select distinct model_id, model_version, feature, reference_rows as rows_non_null
    from profiles
),

-- every bucket seen on either side, for every day being scored
buckets as (
    select t.date, t.model_id, t.model_version, t.feature, b.bucket
    from current_totals as t
    inner join (
        select model_id, model_version, feature, bucket from reference_bins
        union
        select model_id, model_version, feature, bucket from current_bins
    ) as b on t.model_id = b.model_id and t.model_version = b.model_version and t.feature = b.feature
),

shares as (
    select b.date, b.model_id, b.model_version, b.feature,
        case
            when coalesce(c.n, 0) = 0 then {{ psi_floor }} else cast(c.n as double) / t.rows_non_null
        end as current_share,
        case
            when coalesce(r.n, 0) = 0 then {{ psi_floor }} else cast(r.n as double) / rt.rows_non_null
        end as reference_share
    from buckets as b
    inner join current_totals as t
        on
            b.date = t.date and b.model_id = t.model_id and b.model_version = t.model_version
            and b.feature = t.feature
    inner join reference_totals as rt
        on b.model_id = rt.model_id and b.model_version = rt.model_version and b.feature = rt.feature
    left join current_bins as c
        on
            b.date = c.date and b.model_id = c.model_id and b.model_version = c.model_version
            and b.feature = c.feature and b.bucket = c.bucket
    left join reference_bins as r
        on
            b.model_id = r.model_id and b.model_version = r.model_version
            and b.feature = r.feature and b.bucket = r.bucket
),

psi as (
    select date, model_id, model_version, feature,
        {{ exact_sum('(current_share - reference_share) * ln(current_share / reference_share)') }} as psi
    from shares
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
    case when t.date > v.reference_end_date then p.psi end as psi,
    t.date > v.reference_end_date as reference_complete,
    v.reference_start_date,
    v.reference_end_date
from current_totals as t
inner join versions as v on t.model_id = v.model_id and t.model_version = v.model_version
left join psi as p
    on t.date = p.date and t.model_id = p.model_id and t.model_version = p.model_version and t.feature = p.feature
