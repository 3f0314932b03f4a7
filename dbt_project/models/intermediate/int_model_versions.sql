{{ config(materialized='incremental', unique_key=['model_id', 'model_version'], incremental_strategy='delete+insert') }}

-- First day each model version made predictions; its first
-- `drift_reference_days` days are the reference for drift and calibration.
-- Kept incrementally (a run only reads its own days) and corrected to the
-- earliest day if an earlier range is loaded later.

with seen as (
    select model_id, model_version, min(prediction_date) as first_date
    from {{ ref('stg_predictions') }}
    where {{ in_partition_range('predicted_at') }}
    group by model_id, model_version
),

candidates as (
    select * from seen
    {% if is_incremental() %}
    union all
    select t.model_id, t.model_version, t.first_date
    from {{ this }} t
    join seen s on s.model_id = t.model_id and s.model_version = t.model_version
    {% endif %}
)

select
    model_id,
    model_version,
    min(first_date) as first_date,
    min(first_date) + {{ var('drift_reference_days') }} - 1 as reference_end_date
from candidates
group by model_id, model_version
