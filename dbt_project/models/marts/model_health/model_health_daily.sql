{{ config(
    pre_hook="{{ delete_label_refresh('date') }}",
    partition_by=day_partitions('date'),
) }}

-- Leading model-health metrics per day, model and version. Labels arrive
-- late, so a run recomputes the (model, day) pairs of
-- intermediate.int_label_refresh_days: its own days, the label_lookback_days
-- before them, and every older day that got labels during the run (up to the
-- model's label horizon), reading only those days' predictions. Labels and
-- feedback count when known by the end of the run's last day and within the
-- model's label horizon; `labels_as_of` says which (see int_label_refresh_days).
-- The sums come from intermediate.int_label_counts (grain 'model_version'), which counts the bias marts'
-- groups in the same pass; the ratios are derived here.

select
    d.date,
    d.model_id,
    d.model_version,
    d.predictions,
    d.mean_score,
    d.p50_score,
    d.p90_score,
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
    d.expected_calibration_error,
    d.calibration_chi2,
    d.calibration_bins,
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
from {{ ref('int_label_counts') }} d
left join {{ ref('int_label_refresh_days') }} r on r.model_id = d.model_id and r.date = d.date
where d.grain = 'model_version'
