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

{# True when a prediction made on `date_col` may still get labels on the run's last day: every event
   known by then is within its label horizon. #}
{% macro label_horizon_open(date_col, model_col) -%}
    ({{ date_col }} + {{ label_horizon_days(model_col) }} >= {{ max_date() }})
{%- endmacro %}

{# The shortest label horizon of any model (the default's included). #}
{% macro min_label_horizon_days() -%}
    {%- set days = [var('default_label_horizon_days') | int] -%}
    {%- for settings in (var('model_settings', {}) or {}).values() -%}
        {%- if settings is mapping and settings.get('label_horizon_days') is not none -%}
            {%- do days.append(settings['label_horizon_days'] | int) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- days | min -}}
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

{# The label and feedback events known by the end of max_date; is_label says which. Labels of an older
   day were stamped after that day, so the scan starts at label_scan_start(). #}
{% macro label_events() -%}
    select prediction_id, labeled_at as event_at, true as is_label, label, label_source, source_priority,
        cast(null as {{ dbt.type_string() }}) as feedback_value
    from {{ ref('stg_labels') }}
    where labeled_at >= {{ label_scan_start() }} and {{ known_by_max_date('labeled_at') }}
    union all
    select prediction_id, created_at, false, null, null, null, value
    from {{ ref('stg_feedback') }}
    where created_at >= {{ label_scan_start() }} and {{ known_by_max_date('created_at') }}
{%- endmacro %}

{# When each label and feedback event was stamped (prediction_id, at), known by the end of max_date and
   stamped on or after `since` (and before `before`, when given): a bounded scan of each table. #}
{% macro event_times(since, before=none) -%}
    {%- for table, column in [('stg_labels', 'labeled_at'), ('stg_feedback', 'created_at')] %}
    select prediction_id, {{ column }} as at from {{ ref(table) }}
    where {{ column }} >= {{ since }} and {{ known_by_max_date(column) }}
        {%- if before is not none %} and {{ column }} < {{ before }}{% endif %}
    {%- if not loop.last %}
    union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{# What the events say about each refreshed prediction (refreshed_predictions()): its resolved label (a
   human_review label overrides an implicit one, within a source the latest wins), that label's source,
   when its first label came, its feedback events and the 'up' ones. An event counts when known by the
   end of max_date and within the prediction's label horizon.

   A prediction whose horizon ends on or after max_date (label_horizon_open: every prediction of a one-day
   run, unless a horizon is shorter than label_lookback_days) needs no horizon test, so those rows
   (horizon_open true) aggregate the event tables straight, with no join to the predictions first; only
   the predictions whose horizon closed earlier meet their events in a join (horizon_open false).
   intermediate.int_label_counts joins on both: `o.prediction_id = p.prediction_id and o.horizon_open =
   label_horizon_open(p.date, p.model_id)`, with its hash table built on these rows
   (hash_join_build_as_written).

   An aggregate, not a ranking window: most predictions have one label event, and at 1M predictions a
   day (4.9M label events for the days a run refreshes) the window's partitioning and sort cost more than
   arg_max (tests/benchmarks/PERFORMANCE.md). #}
{% macro prediction_outcomes() -%}
    {%- set rank = label_rank_key('source_priority', 'event_at') -%}
    {%- set outcomes -%}
        {{ max_by('label', rank) }} filter (where is_label) as label,
        {{ max_by('label_source', rank) }} filter (where is_label) as label_source,
        min(event_at) filter (where is_label) as first_labeled_at,
        {{ count_where('not is_label') }} as feedback_events,
        {{ count_where("feedback_value = 'up'") }} as up_events
    {%- endset -%}
    select prediction_id, true as horizon_open, {{ outcomes }}
    from ({{ label_events() }}) as e
    group by prediction_id
    union all
    select e.prediction_id, false, {{ outcomes }}
    from ({{ label_events() }}) as e
    join ({{ refreshed_predictions() }}) as p on p.prediction_id = e.prediction_id
    -- the first test reads only the days old enough for the shortest horizon to have closed
    where p.predicted_at < {{ max_date() }} - interval {{ min_label_horizon_days() }} day
      and not {{ label_horizon_open('p.date', 'p.model_id') }}
      and {{ within_label_horizon('e.event_at', 'p.date', 'p.model_id') }}
    group by e.prediction_id
{%- endmacro %}

{# A label event's rank among its prediction's label events: source_priority first, then the time; one
   bigint (priority x 10^17 + microseconds since 1970: ~3,000 years apart), which DuckDB's arg_max compares
   faster than a (priority, time) struct. #}
{% macro label_rank_key(priority, at) -%}
    (cast({{ priority }} as bigint) * 100000000000000000 + {{ epoch_microseconds(at) }})
{%- endmacro %}

{# The predictions of the (model_id, date) pairs this run recomputes for late
   labels (intermediate.int_label_refresh_days; its labels_as_of joins the
   marts' grouped rows), picked by a semi join. DuckDB still underestimates
   these rows (a default selectivity per filter), so the marts that join them
   build their hash tables as written (hash_join_build_as_written). #}
{% macro refreshed_predictions() -%}
    select p.*, p.prediction_date as date
    from {{ ref('stg_predictions') }} p
    {{ semi_join() }} {{ ref('int_label_refresh_days') }} r on r.model_id = p.model_id and r.date = p.prediction_date
    where p.predicted_at >= {{ label_scan_start() }} and {{ known_by_max_date('p.predicted_at') }}
{%- endmacro %}

{#- The days a version's calibration is learnt from (its reference window up to its labels' maturing, reference
    end + the label horizon) have a day in this run's range: a learnt calibration is learnt again, with the labels
    re-run into those days (int_score_calibration). -#}
{% macro calibration_days_in_run(alias) -%}
    ({{ alias }}.reference_start_date <= {{ max_date() }}
     and {{ alias }}.reference_end_date + {{ label_horizon_days(alias ~ '.model_id') }} >= {{ min_date() }})
{%- endmacro %}

{#- int_score_calibration's pre-hook: the learnt calibrations this run learns again (matured by its last day, and
    calibration_days_in_run), removed first; a run that learns nothing again deletes nothing (on Spark a delete
    rewrites the table). -#}
{% macro delete_relearnt_calibrations() -%}
    {%- set predicate -%}
        exists (
            select 1 from {{ ref('int_model_versions') }} as v
            where v.model_id = old.model_id and v.model_version = old.model_version
              and v.reference_end_date + {{ label_horizon_days('v.model_id') }} <= {{ max_date() }}
              and {{ calibration_days_in_run('v') }}
        )
    {%- endset %}
    {%- if is_incremental() and execute
            and run_query('select count(*) from ' ~ this ~ ' as old where ' ~ predicate).columns[0].values()[0] > 0 -%}
        {{ delete_rows_where(none, predicate) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
