{{ config(
    pre_hook="{{ delete_label_refresh('date') }}",
    partition_by=day_partitions('date'),
) }}

-- Fairness per prediction day, model, protected attribute and group: the
-- counts are sufficient statistics, so any trailing window is judged by summing
-- them and re-deriving the rates, intervals and verdicts from the window totals
-- (orchestration/lib/bias.py); the day's rates below are for reading one day
-- and must never be averaged over days.
-- Like model health, a run recomputes the (model, day) pairs of
-- intermediate.int_label_refresh_days: its own days, the label_lookback_days
-- before them and older days that got late labels (up to the label horizon).
-- The groups' counts come from intermediate.int_label_counts (grain 'attribute_group'), counted in the same
-- pass over the refreshed predictions as model health's.

{#- protected attributes from the project file (dbt var protected_attributes: {name: [users columns]});
    an intersection's group joins its columns' values with '|'. None declared: no rows (not assessed). #}
{%- set attributes = var('protected_attributes', {}) %}
{%- set counted = ['predictions', 'positives', 'labelled', 'labelled_positives', 'true_positives', 'false_positives',
                    'false_negatives', 'true_negatives'] %}

with users as (
    -- a user counts in a day's population from the day they signed up: a backfill's users snapshot holds the
    -- users of later days too (a trial's first day counted 6,533 users where its daily run had 6,241)
    select a.*, cast(s.signup_at as date) as signup_day
    from ({{ attribute_users() }}) as a
    join {{ ref('stg_users') }} as s on s.user_id = a.user_id
),

grouped as (
    select date, model_id, attribute, group_value,
        {%- for n in counted %}
        {{ n }},
        {%- endfor %}
        score_sum
    from {{ ref('int_label_counts') }}
    where grain = 'attribute_group'
),

signups as (
    {%- for attribute, cols in attributes.items() %}
    select '{{ attribute }}' as attribute,
        {% for c in cols %}u.{{ adapter.quote(c) }}{% if not loop.last %} || '|' || {% endif %}{% endfor %} as group_value,
        u.signup_day,
        count(*) as users
    from users u
    group by all
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as attribute, cast(null as {{ dbt.type_string() }}) as group_value,
        cast(null as date) as signup_day, cast(0 as bigint) as users
    where false
    {%- endfor %}
),

-- each day's users signed up by then, per group and in all
population as (
    select g.date, g.attribute, g.group_value, sum(s.users) as population_users
    from (select distinct date, attribute, group_value from grouped) g
    join signups s on s.attribute = g.attribute and s.group_value = g.group_value and s.signup_day <= g.date
    group by g.date, g.attribute, g.group_value
),

population_totals as (
    select d.date, count(u.user_id) as population_total
    from (select distinct date from grouped) d
    join users u on u.signup_day <= d.date
    group by d.date
),

counts as (
    select
        g.date,
        g.model_id,
        g.attribute,
        g.group_value,
        {%- for n in counted %}
        g.{{ n }},
        {%- endfor %}
        cast(g.score_sum as double) as score_sum,
        g.labelled_positives as label_sum,
        coalesce(p.population_users, 0) as population_users,
        coalesce(t.population_total, 0) as population_total,
        r.labels_as_of
    from grouped g
    left join population p on p.date = g.date and p.attribute = g.attribute and p.group_value = g.group_value
    left join population_totals t on t.date = g.date
    left join {{ ref('int_label_refresh_days') }} r on r.model_id = g.model_id and r.date = g.date
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
