{{ config(pre_hook="{{ delete_partition_range('date', var('label_lookback_days')) }}") }}

-- Fairness per prediction day, model, protected attribute and group: the
-- counts are sufficient statistics, so any trailing window is judged by summing
-- them and re-deriving the rates, intervals and verdicts from the window totals
-- (orchestration/lib/bias.py); the day's rates below are for reading one day
-- and must never be averaged over days.
-- Like model health, label-based counts of the last label_lookback_days are
-- recomputed by every run.

{%- set since = refresh_start(var('label_lookback_days')) %}
{%- set attributes = {
    'gender': 'u.gender',
    'age_band': 'u.age_band',
    'country': 'u.country',
    'gender_x_age_band': "u.gender || '|' || u.age_band",
} %}

with users as (
    select user_id, coalesce(gender, 'unknown') as gender, coalesce(age_band, 'unknown') as age_band,
        coalesce(country, 'unknown') as country
    from {{ ref('stg_users') }}
),

predictions as (
    select p.prediction_id, p.prediction_date as date, p.model_id, p.user_id, p.score, p.decision
    from {{ ref('stg_predictions') }} p
    where {{ in_refresh_range('p.predicted_at', var('label_lookback_days')) }}
),

labels as (
    {{ resolved_labels(since) }}
),

scored as (
    select p.*, l.label
    from predictions p
    left join labels l on l.prediction_id = p.prediction_id
),

grouped as (
    {%- for attribute, expr in attributes.items() %}
    select s.date, s.model_id, '{{ attribute }}' as attribute, coalesce({{ expr }}, 'unknown') as group_value,
        s.decision, s.label, s.score
    from scored s
    left join users u on u.user_id = s.user_id
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

population as (
    {%- for attribute, expr in attributes.items() %}
    select '{{ attribute }}' as attribute, {{ expr }} as group_value, count(*) as population_users
    from users u
    group by all
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

counts as (
    select
        g.date,
        g.model_id,
        g.attribute,
        g.group_value,
        count(*) as predictions,
        count_if(g.decision) as positives,
        count(g.label) as labelled,
        count_if(g.label = 1) as labelled_positives,
        count_if(g.decision and g.label = 1) as true_positives,
        count_if(g.decision and g.label = 0) as false_positives,
        count_if(not g.decision and g.label = 1) as false_negatives,
        count_if(not g.decision and g.label = 0) as true_negatives,
        {{ exact_sum('case when g.label is not null then g.score end') }} as score_sum,
        count_if(g.label = 1) as label_sum,
        coalesce(max(p.population_users), 0) as population_users,
        (select count(*) from users) as population_total,
        {{ max_date() }} as labels_as_of
    from grouped g
    left join population p on p.attribute = g.attribute and p.group_value = g.group_value
    group by g.date, g.model_id, g.attribute, g.group_value
)

select
    c.*,
    -- every rate is NULL (never 0, never an error) when its denominator is 0
    c.positives::double / nullif(c.predictions, 0) as selection_rate,
    c.true_positives::double / nullif(c.true_positives + c.false_negatives, 0) as tpr,
    c.false_positives::double / nullif(c.false_positives + c.true_negatives, 0) as fpr,
    c.true_positives::double / nullif(c.true_positives + c.false_positives, 0) as precision,
    c.score_sum / nullif(c.labelled, 0) as mean_score,
    c.label_sum::double / nullif(c.labelled, 0) as observed_positive_rate,
    -- per-group calibration-in-the-large: positive means the group is over-scored
    c.score_sum / nullif(c.labelled, 0) - c.label_sum::double / nullif(c.labelled, 0) as calibration_gap_group,
    -- representation: the group's share of the model's traffic vs of the users
    c.predictions::double / nullif(sum(c.predictions) over (partition by c.date, c.model_id, c.attribute), 0)
        as prediction_share,
    c.population_users::double / nullif(c.population_total, 0) as population_share
from counts c
