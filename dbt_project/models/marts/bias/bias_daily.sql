{{ config(pre_hook="{{ delete_partition_range('date', var('label_lookback_days')) }}") }}

-- Sufficient statistics for fairness per prediction day, model, protected
-- attribute and group: counts only, so any trailing window can be summed and
-- the rates, intervals and verdicts computed over it (orchestration/lib/bias.py).
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
)

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
