{#- The days a model reads of the reference windows it (re)builds: (first reference_start_date, last
    reference_end_date) of the versions `versions_sql` selects, read before the model's SQL runs, so that
    its scan of stg_predictions is bounded by constants the engine can prune with (a join on the windows
    alone scans, and checks held-back days for, all of history on every run). None at parse time and on
    a warehouse without int_model_versions yet (a plain `dbt compile`): no bound. -#}
{% macro reference_window_span(versions_sql) -%}
    {%- if execute and load_relation(ref('int_model_versions')) is not none -%}
        {%- set span_sql -%}
            select min(reference_start_date), max(reference_end_date) from ({{ versions_sql }}) as windows
        {%- endset -%}
        {{ return(run_query(span_sql).rows[0]) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- True for the rows of `col` (a prediction's timestamp) on the days of `span` (reference_window_span);
    false for all when no version needs building; true when the span is unknown. -#}
{% macro predicted_in_span(span, col='p.predicted_at') -%}
    {%- if span is not none and span[0] is not none -%}
        ({{ col }} >= cast('{{ span[0] }}' as date) and {{ col }} < cast('{{ span[1] }}' as date) + interval 1 day)
    {%- elif span is not none -%}
        (1 = 0)
    {%- else -%}
        (1 = 1)
    {%- endif -%}
{%- endmacro %}
