{# Equal-width score bin 0..9 (a score of exactly 1 falls in bin 9). #}
{% macro score_bin(score) -%}
    least(cast(floor({{ score }} * 10) as integer), 9)
{%- endmacro %}

{# ---- Per-model settings from the project file (var model_settings:
   {model_id: {label_horizon_days, reference_days, reference_start, reference_end, ...}}).
   `model_setting` is a SQL expression over `model_col`: the model's value, else `default`. #}
{% macro model_setting(model_col, key, default, quote=false) -%}
    {%- set cases = [] -%}
    {%- for model_id, settings in (var('model_settings', {}) or {}).items() -%}
        {%- if settings is mapping and settings.get(key) is not none -%}
            {%- set value = settings[key] -%}
            {%- do cases.append((model_id | replace("'", "''"), ("date '" ~ value ~ "'") if quote else value)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if cases -%}
        (case {{ model_col }}{% for model_id, value in cases %} when '{{ model_id }}' then {{ value }}{% endfor %} else {{ default }} end)
    {%- else -%}
        ({{ default }})
    {%- endif -%}
{%- endmacro %}

{# Labels (and feedback) later than this many days after the prediction day do not count. #}
{% macro label_horizon_days(model_col) -%}
    {{ model_setting(model_col, 'label_horizon_days', var('default_label_horizon_days') | int) }}
{%- endmacro %}

{# True when event timestamp `event_col` is within the horizon of a prediction made on `date_col`. #}
{% macro within_label_horizon(event_col, date_col, model_col) -%}
    ({{ event_col }} < {{ date_col }} + {{ label_horizon_days(model_col) }} + 1)
{%- endmacro %}

{# The drift / calibration reference window of a model version: fixed dates
   (reference_start/reference_end) or its first reference_days days. #}
{% macro reference_start_date(model_col, first_date_col) -%}
    coalesce({{ model_setting(model_col, 'reference_start', 'null', quote=true) }}, {{ first_date_col }})
{%- endmacro %}

{% macro reference_end_date(model_col, first_date_col) -%}
    coalesce({{ model_setting(model_col, 'reference_end', 'null', quote=true) }},
             {{ first_date_col }} + {{ model_setting(model_col, 'reference_days', var('default_reference_days') | int) }} - 1)
{%- endmacro %}

{# The label events (and, with feedback=true, the feedback events) of the
   predictions in CTE `predictions` (prediction_id, date, model_id): known by
   the end of max_date and within the model's label horizon; is_label says
   which. Both kinds meet the predictions in one join: probing a day's
   predictions is most of the cost, so once rather than once per kind. Labels
   of an older day were stamped after that day, so the scan starts at
   label_scan_start(). #}
{% macro prediction_events(predictions, feedback=false) -%}
    select e.*
    from (
        select prediction_id, labeled_at as event_at, true as is_label, label, label_source, source_priority,
            cast(null as {{ dbt.type_string() }}) as feedback_value
        from {{ ref('stg_labels') }}
        where labeled_at >= {{ label_scan_start() }} and {{ known_by_max_date('labeled_at') }}
        {%- if feedback %}
        union all
        select prediction_id, created_at, false, null, null, null, value
        from {{ ref('stg_feedback') }}
        where created_at >= {{ label_scan_start() }} and {{ known_by_max_date('created_at') }}
        {%- endif %}
    ) as e
    join {{ predictions }} p on p.prediction_id = e.prediction_id
    where {{ within_label_horizon('e.event_at', 'p.date', 'p.model_id') }}
{%- endmacro %}

{# One label per prediction from `events` (a relation of prediction_events): a
   human_review label overrides an implicit one, within a source the latest wins. #}
{% macro resolved_labels(events) -%}
    select prediction_id, label, labeled_at, label_source, first_labeled_at
    from (
        select prediction_id, label, event_at as labeled_at, label_source,
            min(event_at) over (partition by prediction_id) as first_labeled_at,
            row_number() over (partition by prediction_id order by source_priority desc, event_at desc) as label_rank
        from {{ events }}
        where is_label
    ) as ranked
    where label_rank = 1
{%- endmacro %}

{# The predictions of the (model_id, date) pairs this run recomputes for late
   labels (intermediate.int_label_refresh_days; its labels_as_of joins the
   marts' grouped rows). A semi join, not an inner one: DuckDB then estimates
   these rows from the predictions' scan. It estimated the inner join at none
   and built later hash joins on the refreshed predictions (2M rows at 1M a
   day) instead of on their ~200k label events (tests/benchmarks/PERFORMANCE.md). #}
{% macro refreshed_predictions() -%}
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} p
    {{ semi_join() }} {{ ref('int_label_refresh_days') }} r on r.model_id = p.model_id and r.date = p.prediction_date
    where p.predicted_at >= {{ label_scan_start() }} and {{ known_by_max_date('p.predicted_at') }}
{%- endmacro %}
