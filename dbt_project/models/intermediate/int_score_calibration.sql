{#- a version's rows are written once (see `ready`): appended, on either engine; on DuckDB by the short
    incremental path, which needs on_schema_change `fail` (macros/duckdb_materialisations.sql) -#}
{{ config(materialized='incremental', unique_key=['model_id', 'model_version', 'score_bin'],
          incremental_strategy='append', on_schema_change='fail' if target.type == 'duckdb' else 'ignore',
          pre_hook="{{ delete_relearnt_calibrations() }}") }}

-- Histogram-binning calibration of each model version, learnt once from its
-- reference window (int_model_versions) when that window's labels have
-- matured: reference end + the model's label_horizon_days. Used by the
-- label-free (CBPE) precision/recall estimates. Written once per version, so
-- each run reads a bounded window; learnt again by a run that covers a day of
-- the window or of its labels' maturing (late labels re-run into those days:
-- delete_relearnt_calibrations) and reaches its matured day.

{%- set ready_sql %}
    select v.model_id, v.model_version, v.reference_start_date, v.reference_end_date
    from {{ ref('int_model_versions') }} v
    where v.reference_end_date + {{ label_horizon_days('v.model_id') }} <= {{ max_date() }}
    {% if is_incremental() %}
      and (
          not exists (
              select 1 from {{ this }} t
              where t.model_id = v.model_id and t.model_version = v.model_version
          )
          or {{ calibration_days_in_run('v') }}
      )
    {% endif %}
{%- endset %}
{#- most runs learn nothing: then no prediction or label is read -#}
{%- set span = reference_window_span(ready_sql) %}

with ready as (
    {{ ready_sql }}
),

reference as (
    select p.prediction_id, p.model_id, p.model_version, r.reference_end_date, p.score,
        {{ score_bin('p.score') }} as score_bin
    from {{ ref('stg_predictions') }} p
    join ready r
        on r.model_id = p.model_id and r.model_version = p.model_version
       and p.prediction_date between r.reference_start_date and r.reference_end_date
    where {{ predicted_in_span(span) }}
),

-- The labels known when the window matured (reference end + the model's
-- label horizon), resolved among themselves: a label that lands later must
-- not replace (or drop) them, so the calibration does not depend on which run
-- learnt it.
labels as (
    select model_id, model_version, score, score_bin, label
    from (
        select f.model_id, f.model_version, f.score, f.score_bin, l.label,
            row_number() over (partition by l.prediction_id order by l.source_priority desc, l.labeled_at desc)
                as label_rank
        from reference f
        join {{ ref('stg_labels') }} l
            on l.prediction_id = f.prediction_id
           and {{ within_label_horizon('l.labeled_at', 'f.reference_end_date', 'f.model_id') }}
    ) as ranked
    where label_rank = 1
)

{%- set prior = 10 %}

-- A bin's labelled share, shrunk towards what its scores claim by {{ prior }} pseudo-labels at its mean
-- score (a beta prior centred on the model's own calibration): a bin learnt from 1-3 labels said 1.000 or
-- fell below its neighbour; from hundreds the prior is a rounding error.
select
    model_id,
    model_version,
    score_bin,
    labelled,
    (label_sum + {{ prior }} * mean_score) / (labelled + {{ prior }}) as calibrated_probability,
    mean_score
from (
    select
        model_id,
        model_version,
        score_bin,
        count(*) as labelled,
        sum(label) as label_sum,
        {{ exact_avg('score', width=18) }} as mean_score
    from labels
    group by model_id, model_version, score_bin
) as bins
