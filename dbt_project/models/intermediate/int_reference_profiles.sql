{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_stale_reference_profiles() }}"
) }}

-- The reference distribution of every monitored feature (and the score) of
-- each model version, which marts.feature_drift_daily compares each day
-- with: numeric features by the 10 bins cut at the reference deciles,
-- categorical ones by category. Built once, by the first run whose last day
-- is at or after the end of the version's reference window
-- (int_model_versions), and kept: a later run reads only its own days.
-- Built again only when the window changes or the run covers a day of it
-- (delete_stale_reference_profiles); `--full-refresh` rebuilds every
-- profile from the warehouse's predictions.

{#- The days this run reads: the windows of the versions it (re)builds, known before the pre-hook
    deletes (the same conditions). -#}
{%- set rebuilt_sql %}
    select v.reference_start_date, v.reference_end_date
    from {{ ref('int_model_versions') }} as v
    where v.reference_end_date <= {{ max_date() }}
    {%- if is_incremental() %}
        and (
            not exists (
                select 1 from {{ this }} as t
                where {{ same_reference_window('t', 'v') }}
            )
            or {{ window_in_run('v') }}
        )
    {%- endif %}
{%- endset %}
{%- set span = reference_window_span(rebuilt_sql) %}

with versions as (
    select v.model_id, v.model_version, v.reference_start_date, v.reference_end_date
    from {{ ref('int_model_versions') }} as v
    where v.reference_end_date <= {{ max_date() }}
    {% if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as t
            where t.model_id = v.model_id and t.model_version = v.model_version
        )
    {% endif %}
),

reference_predictions as (
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} as p
    inner join versions as v
        on
            p.model_id = v.model_id and p.model_version = v.model_version
            and p.prediction_date between v.reference_start_date and v.reference_end_date
    where {{ predicted_in_span(span) }}
),

numeric_values as (
    {{ features_long('reference_predictions', true) }}
),

categorical_values as (
    {{ features_long('reference_predictions', false) }}
),

-- a feature with no value in the window gets no profile (and no PSI)
interpolated_edges as (
    select
        model_id,
        model_version,
        feature,
        {{ decile_edges('value') }},
        count(value) as reference_rows
    from numeric_values
    group by model_id, model_version, feature
    having count(value) > 0
),

-- A decile between two equal values is that value, but DuckDB's interpolation (lo * (1 - d) + hi * d)
-- can land an ulp beside it (1.5.6: 0.2425373134328358 for 0.24253731343283583): the value's rows then
-- fall in another bin than numpy's, in the empty interval (edge_k, edge_k+1] of a model with few
-- distinct scores (a tree's). Each edge snaps to a reference value within a few ulps, and the edges
-- never decrease.
snapped_edges as (
    select
        e.model_id,
        e.model_version,
        e.feature,
        e.reference_rows,
        {%- for i in range(1, 10) %}
        coalesce(
            min(n.value) filter (where abs(n.value - e.edge_{{ i }}) <= 1e-15 * abs(e.edge_{{ i }})),
            e.edge_{{ i }}
        ) as edge_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
    from interpolated_edges as e
    inner join numeric_values as n
        on n.model_id = e.model_id and n.model_version = e.model_version and n.feature = e.feature
    group by
        e.model_id,
        e.model_version,
        e.feature,
        e.reference_rows,
        {%- for i in range(1, 10) %}
        e.edge_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
),

edges as (
    select
        model_id,
        model_version,
        feature,
        reference_rows,
        edge_1,
        {%- for i in range(2, 10) %}
        greatest(
            {%- for j in range(1, i + 1) %}
            edge_{{ j }}{{ ',' if not loop.last }}
            {%- endfor %}
        ) as edge_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
    from snapped_edges
),

numeric_counts as (
    select
        n.model_id,
        n.model_version,
        n.feature,
        {{ decile_bin('n.value', 'e') }} as bin_index,
        count(*) as reference_count
    from numeric_values as n
    inner join edges as e
        on n.model_id = e.model_id and n.model_version = e.model_version and n.feature = e.feature
    where n.value is not null
    group by n.model_id, n.model_version, n.feature, {{ decile_bin('n.value', 'e') }}
),

bin_indexes as (
    {%- for i in range(10) %}
    select {{ i }} as bin_index{{ ' union all' if not loop.last }}
    {%- endfor %}
),

-- every bin of every numeric feature (empty ones with count 0), with its edges:
-- bin k holds lower_edge < value <= upper_edge (edge_k, edge_k+1; open at both ends)
numeric_bins as (
    select
        e.model_id,
        e.model_version,
        e.feature,
        'numeric' as feature_type,
        cast(b.bin_index as {{ dbt.type_string() }}) as bin,
        case b.bin_index
            {%- for i in range(1, 10) %}
            when {{ i }} then e.edge_{{ i }}
            {%- endfor %}
        end as lower_edge,
        case b.bin_index
            {%- for i in range(0, 9) %}
            when {{ i }} then e.edge_{{ i + 1 }}
            {%- endfor %}
        end as upper_edge,
        coalesce(c.reference_count, 0) as reference_count,
        e.reference_rows
    from edges as e
    cross join bin_indexes as b
    left join numeric_counts as c
        on
            e.model_id = c.model_id and e.model_version = c.model_version and e.feature = c.feature
            and b.bin_index = c.bin_index
),

categorical_bins as (
    select
        model_id,
        model_version,
        feature,
        'categorical' as feature_type,
        value as bin,
        cast(null as double) as lower_edge,
        cast(null as double) as upper_edge,
        count(*) as reference_count,
        cast(sum(count(*)) over (partition by model_id, model_version, feature) as bigint) as reference_rows
    from categorical_values
    where value is not null
    group by model_id, model_version, feature, value
),

bins as (
    select * from numeric_bins
    union all
    select * from categorical_bins
)

select
    b.model_id,
    b.model_version,
    b.feature,
    b.feature_type,
    b.bin,
    b.lower_edge,
    b.upper_edge,
    b.reference_count,
    b.reference_rows,
    cast(b.reference_count as double) / b.reference_rows as reference_share,
    v.reference_start_date,
    v.reference_end_date,
    cast(current_timestamp as timestamp) as built_at
from bins as b
inner join versions as v on b.model_id = v.model_id and b.model_version = v.model_version
