{{ config(
    materialized='table',
    pre_hook="{{ hash_join_build_as_written() }}",
    post_hook="{{ hash_join_build_by_estimate() }}",
) }}

-- The label-based sums of the (model, day) pairs this run recomputes (intermediate.int_label_refresh_days),
-- for both marts that need them, from one pass: each refreshed prediction meets its resolved label and
-- feedback once (the costly part: a join of the days' predictions with their outcomes), then is counted
-- per day, model and version for marts.model_health_daily (grain 'model_version') and per day, model,
-- protected attribute and group for marts.bias_daily (grain 'attribute_group'). Labels and feedback count
-- when known by the end of the run's last day and within the model's label horizon. Rebuilt by every run.

-- depends_on: {{ ref('stg_users') }} (read only when the project file declares protected attributes)

{#- protected attributes from the project file (dbt var protected_attributes: {name: [users columns]});
    an intersection's group joins its columns' values with '|'. None declared: no attribute rows. #}
{%- set attributes = var('protected_attributes', {}) %}
{%- set columns = protected_attribute_columns() %}
{#- the columns each grain has alone: null in the other's rows, typed by the union (the wider of two types) #}
{%- set bias_counts = ['positives', 'labelled_positives'] %}
{%- set health_only = ['mean_score', 'p50_score', 'p90_score', 'positive_rate', 'label_coverage',
    'median_label_delay_hours', 'brier_score', 'expected_calibration_error', 'human_labelled',
    'human_true_positives', 'human_false_positives', 'human_false_negatives', 'expected_true_positives',
    'expected_false_positives', 'expected_false_negatives', 'cbpe_calibrated', 'feedback_rate',
    'feedback_up_share', 'calibration_chi2', 'calibration_bins'] %}
{%- set shared = ['predictions', 'labelled', 'true_positives', 'false_positives', 'false_negatives',
                  'true_negatives'] %}

with predictions as (
    select prediction_id, date, model_id, model_version, user_id, predicted_at, score, decision,
        {{ score_bin('score') }} as score_bin
    from ({{ refreshed_predictions() }})
),

outcomes as (
    {{ prediction_outcomes() }}
),

scored as (
    select
        p.*,
        l.label,
        {{ hours_between('p.predicted_at', 'l.first_labeled_at') }} as label_delay_hours,
        -- human review outranks every other source, so a resolved human_review label is the latest human one
        case when l.label_source = 'human_review' then l.label end as human_label,
        coalesce(l.feedback_events, 0) as feedback_events,
        coalesce(l.up_events, 0) as up_events,
        -- CBPE: the probability the model is right, from the reference calibration when learnt
        coalesce(c.calibrated_probability, p.score) as calibrated_score,
        c.calibrated_probability is not null as is_calibrated
    from predictions p
    left join outcomes l
        on l.prediction_id = p.prediction_id and l.horizon_open = {{ label_horizon_open('p.date', 'p.model_id') }}
    left join {{ ref('int_score_calibration') }} c
        on c.model_id = p.model_id and c.model_version = p.model_version and c.score_bin = p.score_bin
),

-- scores, labels and calibrated probabilities lie in [0, 1] (the contract quarantines other scores):
-- their exact sums fit 18 digits (macros/partition_range.sql: exact_sum)
calibration_bins as (
    select date, model_id, model_version, score_bin,
        count(*) as n, avg(label) as mean_label, {{ exact_avg('score', width=18) }} as mean_score
    from scored
    where label is not null
    group by date, model_id, model_version, score_bin
),

-- ECE is biased upwards on few labels (~1 / sqrt(labelled) for a perfectly calibrated model): the alert
-- also needs the Hosmer-Lemeshow statistic, sum over bins of n (mean_label - mean_score)^2 /
-- (mean_score (1 - mean_score)), chi-square with one degree of freedom per bin on a calibrated model (bins
-- whose scores are all 0 or 1 have no variance and are left out)
ece as (
    select date, model_id, model_version,
        {{ exact_sum('n * abs(mean_label - mean_score)') }} / sum(n) as expected_calibration_error,
        {{ exact_sum('n * (mean_label - mean_score) * (mean_label - mean_score) / (mean_score * (1 - mean_score))',
            where='mean_score * (1 - mean_score) > 1e-12') }} as calibration_chi2,
        count(case when mean_score * (1 - mean_score) > 1e-12 then 1 end) as calibration_bins
    from calibration_bins
    group by date, model_id, model_version
),

daily as (
    select
        date,
        model_id,
        model_version,
        count(*) as predictions,
        {{ exact_avg('score', width=18) }} as mean_score,
        {{ quantiles_cont('score', [0.5, 0.9]) }} as score_quantiles,
        avg(decision::int) as positive_rate,
        count(label) as labelled,
        count(label)::double / count(*) as label_coverage,
        median(label_delay_hours) as median_label_delay_hours,
        {{ count_where('decision and label = 1') }} as true_positives,
        {{ count_where('decision and label = 0') }} as false_positives,
        {{ count_where('not decision and label = 1') }} as false_negatives,
        {{ count_where('not decision and label = 0') }} as true_negatives,
        {{ exact_avg('case when label is not null then (score - label) * (score - label) end', width=18) }}
            as brier_score,
        count(human_label) as human_labelled,
        {{ count_where('decision and human_label = 1') }} as human_true_positives,
        {{ count_where('decision and human_label = 0') }} as human_false_positives,
        {{ count_where('not decision and human_label = 1') }} as human_false_negatives,
        {{ exact_sum('case when decision then calibrated_score else 0 end', width=18) }}
            as expected_true_positives,
        {{ exact_sum('case when decision then 1 - calibrated_score else 0 end', width=18) }}
            as expected_false_positives,
        {{ exact_sum('case when not decision then calibrated_score else 0 end', width=18) }}
            as expected_false_negatives,
        bool_and(is_calibrated) as cbpe_calibrated,
        {{ count_where('feedback_events > 0') }}::double / count(*) as feedback_rate,
        sum(up_events)::double / nullif(sum(feedback_events), 0) as feedback_up_share
    from scored
    group by date, model_id, model_version
),

health as (
    select d.*,
        {{ item('d.score_quantiles', 1) }} as p50_score,
        {{ item('d.score_quantiles', 2) }} as p90_score,
        e.expected_calibration_error,
        e.calibration_chi2,
        coalesce(e.calibration_bins, 0) as calibration_bins
    from daily d
    left join ece e on e.date = d.date and e.model_id = d.model_id and e.model_version = d.model_version
),

{%- if columns %}

users as (
    {{ attribute_users() }}
),
{%- endif %}

-- The additive counts per day, model and combination of every attribute column: one pass over the
-- predictions, joined to the users once, however many attributes there are. Each attribute's groups are
-- sums of these combinations (counts, and exact decimal sums, add up exactly).
combinations as (
    select s.date, s.model_id
        {%- for c in columns %}, u.{{ adapter.quote(c) }}{% endfor %},
        count(*) as predictions,
        {{ count_where('s.decision') }} as positives,
        count(s.label) as labelled,
        {{ count_where('s.label = 1') }} as labelled_positives,
        {{ count_where('s.decision and s.label = 1') }} as true_positives,
        {{ count_where('s.decision and s.label = 0') }} as false_positives,
        {{ count_where('not s.decision and s.label = 1') }} as false_negatives,
        {{ count_where('not s.decision and s.label = 0') }} as true_negatives,
        {{ exact_partial_sum('case when s.label is not null then s.score end', width=18) }} as score_sum
    from scored s
    {%- if columns %}
    left join users u on u.user_id = s.user_id
    {%- endif %}
    group by s.date, s.model_id{% for c in columns %}, u.{{ adapter.quote(c) }}{% endfor %}
),

grouped as (
    {%- for attribute, cols in attributes.items() %}
    {%- set group_value -%}
        coalesce({% for c in cols %}{{ adapter.quote(c) }}{% if not loop.last %} || '|' || {% endif %}{% endfor %}, 'unknown')
    {%- endset %}
    select date, model_id, '{{ attribute }}' as attribute, {{ group_value }} as group_value,
        {#- a sum keeps the type of what it sums, but widens a count's bigint (DuckDB: to hugeint) #}
        {%- for n in shared + bias_counts %}
        {% if n in ('predictions', 'labelled') %}cast(sum({{ n }}) as bigint){% else %}sum({{ n }}){% endif %} as {{ n }},
        {%- endfor %}
        sum(score_sum) as score_sum
    from combinations
    group by date, model_id, {{ group_value }}
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select date, model_id, cast(null as {{ dbt.type_string() }}) as attribute,
        cast(null as {{ dbt.type_string() }}) as group_value,
        {{ (shared + bias_counts) | join(', ') }}, score_sum
    from combinations
    where false
    {%- endfor %}
)

select
    'model_version' as grain,
    h.date,
    h.model_id,
    h.model_version,
    null as attribute,
    null as group_value,
    {%- for n in shared %}
    h.{{ n }},
    {%- endfor %}
    {%- for n in bias_counts + ['score_sum'] %}
    null as {{ n }},
    {%- endfor %}
    {%- for n in health_only %}
    h.{{ n }}{{ ',' if not loop.last }}
    {%- endfor %}
from health h
union all
select
    'attribute_group' as grain,
    g.date,
    g.model_id,
    null as model_version,
    g.attribute,
    g.group_value,
    {%- for n in shared + bias_counts %}
    g.{{ n }},
    {%- endfor %}
    g.score_sum,
    {%- for n in health_only %}
    null as {{ n }}{{ ',' if not loop.last }}
    {%- endfor %}
from grouped g
