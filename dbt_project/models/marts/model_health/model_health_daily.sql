{{ config(pre_hook="{{ delete_partition_range('date') }}") }}

with predictions as (
    select p.prediction_date as date, p.model_id, p.model_version, p.decision, l.label
    from {{ ref('stg_predictions') }} p
    left join {{ ref('int_labels_resolved') }} l on l.prediction_id = p.prediction_id
    where {{ in_partition_range('p.predicted_at') }}
)

select
    date,
    model_id,
    model_version,
    count(*) as predictions,
    avg(decision::int) as positive_rate,
    count(label) as labelled,
    count_if(decision and label = 1) as true_positives,
    count_if(decision and label = 0) as false_positives,
    count_if(not decision and label = 1) as false_negatives,
    count_if(decision and label = 1)::double / nullif(count_if(decision and label is not null), 0) as precision,
    count_if(decision and label = 1)::double / nullif(count_if(label = 1), 0) as recall
from predictions
group by date, model_id, model_version
