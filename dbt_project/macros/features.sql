{# The monitored features: every feature_* column of raw.predictions (found at
   run time, so a new feature is monitored without code changes), plus score.
   A DECIMAL(p, s) column (a database's numeric) is a number: dbt's is_number() knows only the bare
   type names. `column` is the name quoted for SQL: an export's 'feature_od280/od315' or 'feature_abv_%'
   is a column like any other (unquoted, the build failed on it). #}
{% macro monitored_features() %}
    {%- set features = [{'name': 'score', 'column': 'score', 'numeric': true}] -%}
    {%- if execute -%}
        {%- for col in adapter.get_columns_in_relation(source('raw', 'predictions')) -%}
            {%- if col.name.startswith('feature_') -%}
                {%- set decimal = col.dtype.lower().startswith('decimal') or col.dtype.lower().startswith('numeric') -%}
                {%- do features.append({'name': col.name, 'column': feature_column(col.name), 'numeric': col.is_number() or decimal}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(features) }}
{% endmacro %}

{#- A feature's column name quoted for the engine (its quote character doubled inside). -#}
{% macro feature_column(name) -%}
    {%- set q = adapter.quote('x')[0] -%}
    {{- return(q ~ name.replace(q, q ~ q) ~ q) -}}
{%- endmacro %}

{#- A feature's name as a string literal: Spark SQL reads a backslash as an escape and '' as two literals. -#}
{% macro feature_literal(name) -%}
    {{- return(adapter.dispatch('feature_literal')(name)) -}}
{%- endmacro %}

{% macro default__feature_literal(name) -%}
    {{- return("'" ~ name.replace("'", "''") ~ "'") -}}
{%- endmacro %}

{% macro spark__feature_literal(name) -%}
    {{- return("'" ~ name.replace('\\', '\\\\').replace("'", "\\'") ~ "'") -}}
{%- endmacro %}

{# Long format of one kind of feature (numeric or categorical) of `relation`:
   one row per prediction and feature with `value`. #}
{% macro features_long(relation, numeric) %}
    {%- set selected = monitored_features() | selectattr('numeric', 'equalto', numeric) | list -%}
    {%- if selected | length == 0 -%}
        {%- set text = dbt.type_string() %}
        select cast(null as date) as date, cast(null as {{ text }}) as model_id, cast(null as {{ text }}) as model_version,
            cast(null as {{ text }}) as feature, cast(null as {{ 'double' if numeric else text }}) as value
        where false
    {%- else -%}
        {%- for f in selected %}
        select date, model_id, model_version, {{ feature_literal(f.name) }} as feature,
            cast({{ f.column }} as {{ 'double' if numeric else dbt.type_string() }}) as value
        from {{ relation }}
        {% if not loop.last %}union all{% endif %}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}

{# Per day, model, version and monitored feature of `relation`: feature_type, rows_total (count(*)) and
   rows_non_null (count of the feature's values). One aggregate over the rows, whatever the number of
   features; the few rows it returns are then turned long (features_long would scan once per feature). #}
{% macro feature_counts(relation) %}
    {%- set features = monitored_features() %}
    select c.date, c.model_id, c.model_version, f.feature, f.feature_type, c.rows_total,
        case f.feature
            {%- for feature in features %}
            when {{ feature_literal(feature.name) }} then c.non_null_{{ loop.index }}
            {%- endfor %}
        end as rows_non_null
    from (
        select date, model_id, model_version, count(*) as rows_total
            {%- for feature in features %},
            count({{ feature.column }}) as non_null_{{ loop.index }}
            {%- endfor %}
        from {{ relation }}
        group by date, model_id, model_version
    ) as c
    cross join (
        {%- for feature in features %}
        select {{ feature_literal(feature.name) }} as feature, '{{ 'numeric' if feature.numeric else 'categorical' }}' as feature_type
        {{- ' union all' if not loop.last }}
        {%- endfor %}
    ) as f
{% endmacro %}

{# The reference deciles of `value` as columns edge_1 .. edge_9 (linear interpolation,
   numpy.quantile's default). DuckDB computes the nine in one aggregate. #}
{% macro decile_edges(value) -%}
    {{ return(adapter.dispatch('decile_edges')(value)) }}
{%- endmacro %}

{% macro default__decile_edges(value) -%}
    {%- for i in range(1, 10) %}
    percentile_cont({{ i / 10 }}) within group (order by {{ value }}) as edge_{{ i }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro duckdb__decile_edges(value) -%}
    {#- identical aggregates are computed once: one sort for all nine -#}
    {%- for i in range(1, 10) %}
    quantile_cont({{ value }}, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])[{{ i }}] as edge_{{ i }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{# Decile bin 0..9 of `value`: how many of the edges edge_1 .. edge_9 of `edges` it exceeds. #}
{% macro decile_bin(value, edges) -%}
    ({%- for i in range(1, 10) %}(case when {{ value }} > {{ edges }}.edge_{{ i }} then 1 else 0 end){{ ' + ' if not loop.last }}{% endfor -%})
{%- endmacro %}

{# Pre-hook of intermediate.int_reference_profiles: drop the profiles to build
   again: of versions whose reference window changed (project file, or an
   earlier first day loaded later), and of versions whose window has a day in
   this run's range (a re-run or backfill of a reference day, a day a gate now
   holds back or lets through). Raw rows always lie in their own partition
   day (the loader quarantines a row stamped with another day), so a window's
   rows change only in a run over one of its days. #}
{% macro delete_stale_reference_profiles() -%}
    {%- if is_incremental() -%}
        {%- set predicate -%}
            not exists (
                select 1 from {{ ref('int_model_versions') }} as v
                where {{ same_reference_window('v', 'old') }}
            )
            or {{ window_in_run('old') }}
        {%- endset %}
        {{ delete_rows_where(none, predicate) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Two rows (aliases `a`, `b`) of the same model version with the same reference window: a stored profile
    and the version it was built for (int_reference_profiles and its pre-hook ask it from either side). -#}
{% macro same_reference_window(a, b) -%}
    {{ a }}.model_id = {{ b }}.model_id and {{ a }}.model_version = {{ b }}.model_version
    and {{ a }}.reference_start_date = {{ b }}.reference_start_date
    and {{ a }}.reference_end_date = {{ b }}.reference_end_date
{%- endmacro %}

{#- The reference window of `alias` has a day in this run's range: its profile is rebuilt. -#}
{% macro window_in_run(alias) -%}
    ({{ alias }}.reference_start_date <= {{ max_date() }} and {{ alias }}.reference_end_date >= {{ min_date() }})
{%- endmacro %}
