{{ config(
    pre_hook=["{{ delete_label_refresh('date') }}", "{{ hash_join_build_as_written() }}"],
    post_hook="{{ hash_join_build_by_estimate() }}",
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

{#- protected attributes from the project file (dbt var protected_attributes: {name: [users columns]});
    an intersection's group joins its columns' values with '|'. None declared: no rows (not assessed). #}
{%- set attributes = var('protected_attributes', {}) %}
{%- set columns = [] %}
{%- for cols in attributes.values() %}{% for c in cols %}
    {%- if c not in columns %}{% do columns.append(c) %}{% endif %}
{%- endfor %}{% endfor %}
{%- set counted = ['predictions', 'positives', 'labelled', 'labelled_positives', 'true_positives', 'false_positives',
                    'false_negatives', 'true_negatives'] %}

with users as (
    select user_id
        {%- for c in columns %}
        , coalesce(cast({{ adapter.quote(c) }} as {{ dbt.type_string() }}), 'unknown') as {{ adapter.quote(c) }}
        {%- endfor %}
    from {{ ref('stg_users') }}
),

predictions as (
    select p.prediction_id, p.date, p.model_id, p.user_id, p.score, p.decision
    from ({{ refreshed_predictions() }}) p
),

outcomes as (
    {{ prediction_outcomes() }}
),

scored as (
    select p.*, l.label
    from predictions p
    left join outcomes l
        on l.prediction_id = p.prediction_id and l.horizon_open = {{ label_horizon_open('p.date', 'p.model_id') }}
),

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
        {%- for n in counted %}
        {% if n in ('predictions', 'labelled') %}cast(sum({{ n }}) as bigint){% else %}sum({{ n }}){% endif %} as {{ n }},
        {%- endfor %}
        sum(score_sum) as score_sum
    from combinations
    group by date, model_id, {{ group_value }}
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select date, model_id, cast(null as {{ dbt.type_string() }}) as attribute,
        cast(null as {{ dbt.type_string() }}) as group_value,
        {{ counted | join(', ') }}, score_sum
    from combinations
    where false
    {%- endfor %}
),

population as (
    {%- for attribute, cols in attributes.items() %}
    select '{{ attribute }}' as attribute,
        {% for c in cols %}u.{{ adapter.quote(c) }}{% if not loop.last %} || '|' || {% endif %}{% endfor %} as group_value,
        count(*) as population_users
    from users u
    group by all
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as attribute, cast(null as {{ dbt.type_string() }}) as group_value,
        cast(0 as bigint) as population_users
    where false
    {%- endfor %}
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
        (select count(*) from users) as population_total,
        r.labels_as_of
    from grouped g
    left join population p on p.attribute = g.attribute and p.group_value = g.group_value
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
