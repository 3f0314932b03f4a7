{{ config(
    pre_hook=["{{ delete_label_refresh('date') }}", "{{ hash_join_build_as_written() }}"],
    post_hook="{{ hash_join_build_by_estimate() }}",
    partition_by=day_partitions('date'),
) }}

-- Leading model-health metrics per day, model and version. Labels arrive
-- late, so a run recomputes the (model, day) pairs of
-- intermediate.int_label_refresh_days: its own days, the label_lookback_days
-- before them, and every older day that got labels during the run (up to the
-- model's label horizon), reading only those days' predictions. Labels and
-- feedback count when known by the end of the run's last day and within the
-- model's label horizon; `labels_as_of` says which (see int_label_refresh_days).

with predictions as (
    select prediction_id, date, model_id, model_version, predicted_at, score, decision,
        {{ score_bin('score') }} as score_bin
    from ({{ refreshed_predictions() }})
),

outcomes as (
    {{ prediction_outcomes(feedback=true) }}
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

ece as (
    select date, model_id, model_version,
        {{ exact_sum('n * abs(mean_label - mean_score)') }} / sum(n) as expected_calibration_error
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
)

select
    d.date,
    d.model_id,
    d.model_version,
    d.predictions,
    d.mean_score,
    {{ item('d.score_quantiles', 1) }} as p50_score,
    {{ item('d.score_quantiles', 2) }} as p90_score,
    d.positive_rate,
    d.labelled,
    d.label_coverage,
    d.median_label_delay_hours,
    d.true_positives,
    d.false_positives,
    d.false_negatives,
    d.true_negatives,
    d.true_positives::double / nullif(d.true_positives + d.false_positives, 0) as precision,
    d.true_positives::double / nullif(d.true_positives + d.false_negatives, 0) as recall,
    2 * d.true_positives::double / nullif(2 * d.true_positives + d.false_positives + d.false_negatives, 0) as f1,
    d.brier_score,
    e.expected_calibration_error,
    d.human_labelled,
    d.human_true_positives::double / nullif(d.human_true_positives + d.human_false_positives, 0) as human_precision,
    d.human_true_positives::double / nullif(d.human_true_positives + d.human_false_negatives, 0) as human_recall,
    d.expected_true_positives
    / nullif(d.expected_true_positives + d.expected_false_positives, 0) as estimated_precision,
    d.expected_true_positives / nullif(d.expected_true_positives + d.expected_false_negatives, 0) as estimated_recall,
    d.cbpe_calibrated,
    d.feedback_rate,
    d.feedback_up_share,
    r.labels_as_of
from daily d
left join ece e on e.date = d.date and e.model_id = d.model_id and e.model_version = d.model_version
left join {{ ref('int_label_refresh_days') }} r on r.model_id = d.model_id and r.date = d.date
