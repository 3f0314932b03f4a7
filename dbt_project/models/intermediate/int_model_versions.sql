{#- Spark (Parquet tables, no delete): a table rebuilt from every loaded day (the same first days) -#}
{{ config(materialized='table' if target.type == 'spark' else 'incremental',
          unique_key=['model_id', 'model_version'], incremental_strategy='delete+insert',
          on_schema_change='append_new_columns') }}

-- First day each model version made predictions, and its reference window for
-- drift and calibration, per model from the project file (dbt var
-- model_settings): fixed reference_start/reference_end dates, or the first
-- reference_days (default_reference_days) days of the version.
-- Kept incrementally (a run only reads its own days of predictions) and
-- corrected to the earliest day if an earlier range is loaded later.

with seen as (
    select model_id, model_version, min(prediction_date) as first_date
    from {{ ref('stg_predictions') }}
    where {{ 'true' if target.type == 'spark' else in_partition_range('predicted_at') }}
    group by model_id, model_version
),

candidates as (
    select * from seen
    {% if is_incremental() %}
    union all
    -- every known version is rewritten, so a changed reference in the project file applies to all
    select t.model_id, t.model_version, t.first_date
    from {{ this }} t
    {% endif %}
)

select
    model_id,
    model_version,
    first_date,
    {{ reference_end_date('model_id', 'first_date') }} as reference_end_date,
    {{ reference_start_date('model_id', 'first_date') }} as reference_start_date
from (
    select model_id, model_version, min(first_date) as first_date
    from candidates
    group by model_id, model_version
) as versions
