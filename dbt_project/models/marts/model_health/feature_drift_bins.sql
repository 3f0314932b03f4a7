{{ config(pre_hook="{{ delete_partition_range('date') }}") }}

-- The distributions behind feature_drift_daily.psi: per day, model, version
-- and monitored feature (and the score), one row per bin with the share of
-- the feature's non-null values in it on the day and in the version's
-- reference window (int_reference_profiles). Numeric: the 10 bins cut at the
-- reference deciles (a value goes to the bin of how many deciles it
-- exceeds, so bin k holds edge_k < value <= edge_k+1), every bin listed;
-- categorical: every category seen on either side. Shares are raw (an empty
-- bin has share 0): feature_drift_daily floors them for PSI. Rows exist once
-- the reference window is complete (date > reference_end_date), like PSI.

with versions as (
    select model_id, model_version, reference_end_date
    from {{ ref('int_model_versions') }}
),

current_predictions as (
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} as p
    where {{ in_partition_range('p.predicted_at') }}
),

profiles as (
    select model_id, model_version, feature, feature_type, bin, lower_edge, upper_edge, reference_count, reference_rows
    from {{ ref('int_reference_profiles') }}
),

current_numeric as (
    {{ features_long('current_predictions', true) }}
),

current_categorical as (
    {{ features_long('current_predictions', false) }}
),

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

current_bins as (
    select c.date, c.model_id, c.model_version, c.feature,
        cast({{ decile_bin('c.value', 'e') }} as {{ dbt.type_string() }}) as bin,
        count(*) as n
    from current_numeric as c
    inner join edges as e on c.model_id = e.model_id and c.model_version = e.model_version and c.feature = e.feature
    where c.value is not null
    group by c.date, c.model_id, c.model_version, c.feature, {{ decile_bin('c.value', 'e') }}
    union all
    select date, model_id, model_version, feature, value as bin, count(*) as n
    from current_categorical
    where value is not null
    group by date, model_id, model_version, feature, value
),

reference_totals as (
    select distinct model_id, model_version, feature, feature_type, reference_rows
    from profiles
),

-- the days scored: a feature with a stored reference, after the reference window
current_totals as (
    select t.date, t.model_id, t.model_version, t.feature, rt.feature_type, rt.reference_rows, t.rows_non_null
    from ({{ feature_counts('current_predictions') }}) as t
    inner join versions as v on t.model_id = v.model_id and t.model_version = v.model_version
    inner join reference_totals as rt
        on t.model_id = rt.model_id and t.model_version = rt.model_version and t.feature = rt.feature
    where t.date > v.reference_end_date
),

-- every bin of the reference (all 10 numeric ones, empty or not) and every category seen on the day
bins as (
    select t.date, t.model_id, t.model_version, t.feature, p.bin
    from current_totals as t
    inner join profiles as p
        on t.model_id = p.model_id and t.model_version = p.model_version and t.feature = p.feature
    union
    select c.date, c.model_id, c.model_version, c.feature, c.bin
    from current_bins as c
    inner join current_totals as t
        on
            c.date = t.date and c.model_id = t.model_id and c.model_version = t.model_version
            and c.feature = t.feature
),

shares as (
    select
        b.date,
        b.model_id,
        b.model_version,
        b.feature,
        t.feature_type,
        b.bin,
        p.lower_edge,
        p.upper_edge,
        coalesce(p.reference_count, 0) as reference_count,
        coalesce(c.n, 0) as current_count,
        cast(coalesce(p.reference_count, 0) as double) / t.reference_rows as reference_share,
        cast(coalesce(c.n, 0) as double) / nullif(t.rows_non_null, 0) as current_share
    from bins as b
    inner join current_totals as t
        on
            b.date = t.date and b.model_id = t.model_id and b.model_version = t.model_version
            and b.feature = t.feature
    left join profiles as p
        on
            b.model_id = p.model_id and b.model_version = p.model_version
            and b.feature = p.feature and b.bin = p.bin
    left join current_bins as c
        on
            b.date = c.date and b.model_id = c.model_id and b.model_version = c.model_version
            and b.feature = c.feature and b.bin = c.bin
)

select
    date,
    model_id,
    model_version,
    feature,
    feature_type,
    bin,
    case
        when feature_type <> 'numeric' then bin
        when lower_edge is null then concat('(-inf, ', {{ edge_text('upper_edge') }}, ']')
        when upper_edge is null then concat('(', {{ edge_text('lower_edge') }}, ', inf)')
        else concat('(', {{ edge_text('lower_edge') }}, ', ', {{ edge_text('upper_edge') }}, ']')
    end as bin_label,
    -- numeric bins in value order; categories by reference share, then new ones, by name
    row_number() over (
        partition by date, model_id, model_version, feature
        order by
            case when feature_type = 'numeric' then cast(bin as int) end asc,
            reference_count desc,
            bin asc
    ) - 1 as bin_order,
    reference_count,
    current_count,
    reference_share,
    current_share
from shares
