{# The run's partition range. Dagster passes it as the environment variables
   IMPACT_LEDGER_MIN_DATE / IMPACT_LEDGER_MAX_DATE, read only when the SQL is
   compiled for running (execute): dbt records an env var read while parsing
   and re-parses its files when it changes, and any change of --vars makes it
   re-parse the whole project, so passing the dates this way keeps partial
   parsing across runs. A min_date / max_date given with --vars wins (hand
   runs, tests); neither: all history. #}
{% macro run_date(name, default) -%}
    {%- set env_name = 'IMPACT_LEDGER_' ~ (name | upper) -%}
    {%- set given = var(name, none) -%}
    {%- if given is not none -%}
        {%- set value, origin = given | string, "var '" ~ name ~ "'" -%}
    {%- elif execute -%}
        {%- set value, origin = env_var(env_name, default), 'environment variable ' ~ env_name -%}
    {%- else -%}
        {%- set value, origin = default, 'default' -%}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
        {{ exceptions.raise_compiler_error(origin ~ ' must be a date YYYY-MM-DD, got ' ~ value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
{% macro min_date() -%} cast('{{ run_date("min_date", "1970-01-01") }}' as date) {%- endmacro %}
{% macro max_date() -%} cast('{{ run_date("max_date", "2999-12-31") }}' as date) {%- endmacro %}

{# True when timestamp/date column `col` falls on a day of the run's range. #}
{% macro in_partition_range(col) -%}
    ({{ col }} >= {{ min_date() }} and {{ col }} < {{ max_date() }} + interval 1 day)
{%- endmacro %}

{# Known as of the end of the run's last day: later facts (late labels, orders)
   must not leak into an earlier as-of date, so re-runs give identical marts. #}
{% macro known_by_max_date(col) -%}
    ({{ col }} < {{ max_date() }} + interval 1 day)
{%- endmacro %}

{# First day a run recomputes: its min_date, or earlier by `lookback_days`
   for marts whose inputs keep arriving late (labels). #}
{% macro refresh_start(lookback_days=0) -%}
    ({{ min_date() }} - interval {{ lookback_days }} day)
{%- endmacro %}

{# True when `col` falls between refresh_start(lookback_days) and the end of max_date. #}
{% macro in_refresh_range(col, lookback_days=0) -%}
    ({{ col }} >= {{ refresh_start(lookback_days) }} and {{ col }} < {{ max_date() }} + interval 1 day)
{%- endmacro %}

{# Pre-hook of incremental marts: drop the days the run recomputes before it
   inserts them again (idempotent partitions, including days that now have no rows). #}
{% macro delete_partition_range(date_column='date', lookback_days=0) -%}
    {%- if is_incremental() -%}
        {%- set predicate -%}
        {{ date_column }} between cast({{ refresh_start(lookback_days) }} as date) and {{ max_date() }}
        {%- endset %}
        {{ delete_rows_where(date_column, predicate, whole_days=true) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# Order-independent float aggregates: DuckDB sums doubles in parallel, so
   the last bits would change between re-runs; summing exact decimals keeps
   re-run marts bit-identical (15 decimals are far below any reported digit).
   `width` 18 for values known to lie within +-999 (scores, probabilities and
   squared errors in [0, 1]): the same decimals held in 64-bit integers,
   cheaper to cast and add than 38 digits' 128-bit ones; a value out of range
   fails the cast loudly. #}
{% macro exact_sum(expr, scale=15, where=none, width=38) -%}
    cast({{ exact_partial_sum(expr, scale, where, width) }} as double)
{%- endmacro %}

{# The exact sum as the decimal it is: partial sums of groups add up to the
   whole group's exactly (sum them, then cast to double once). Always a
   decimal(38, scale), whatever `width` the values were summed at. #}
{% macro exact_partial_sum(expr, scale=15, where=none, width=38) -%}
    {#- `where` inside the cast, not an aggregate FILTER: a filter still casts every row, and a row it leaves out
        may not fit the decimal (a bin of scores all 0: inf, "Could not cast value inf") #}
    {%- set summed -%}
    sum(cast({% if where %}case when {{ where }} then {{ expr }} end{% else %}{{ expr }}{% endif %} as decimal({{ width }}, {{ scale }})))
    {%- endset -%}
    {%- if width == 38 %}{{ summed }}{% else %}cast({{ summed }} as decimal(38, {{ scale }})){% endif %}
{%- endmacro %}

{% macro exact_avg(expr, width=38) -%}
    ({{ exact_sum(expr, width=width) }} / nullif(count({{ expr }}), 0))
{%- endmacro %}

{# ---- Late labels: the (model_id, date) pairs whose label-based rows a run
   recomputes are listed once, in intermediate.int_label_refresh_days. #}

{# The fixed recent window every run recomputes before its range (maturity:
   a day that gets no label at all must still age into the coverage rule). #}
{% macro label_window_start() -%}
    {{ refresh_start(var('label_lookback_days')) }}
{%- endmacro %}

{# Earliest prediction a run may touch for label reasons: the longest label
   horizon (or the fixed window, if longer) before its range. Bounds every scan. #}
{% macro label_scan_start() -%}
    {%- set days = [var('label_lookback_days') | int, var('max_label_horizon_days') | int, var('default_label_horizon_days') | int] | max -%}
    ({{ min_date() }} - interval {{ days }} day)
{%- endmacro %}

{# First day whose label-based rows this run recomputed: the oldest refreshed
   day, or the fixed window's start when nothing older got labels. #}
{% macro label_refresh_start() -%}
    (select coalesce(min(date), cast({{ label_window_start() }} as date)) from {{ ref('int_label_refresh_days') }})
{%- endmacro %}

{# Pre-hook of the label-based marts: drop every day of the fixed window and
   the run's range (all models: a day may have lost rows), and each
   refreshed (model_id, date) pair older than that. #}
{% macro delete_label_refresh(date_column='date') -%}
    {%- if is_incremental() -%}
        {%- set predicate -%}
        old.{{ date_column }} between cast({{ label_window_start() }} as date) and {{ max_date() }}
           or exists (select 1 from {{ ref('int_label_refresh_days') }} r
                      where r.model_id = old.model_id and r.date = old.{{ date_column }})
        {%- endset %}
        {{ delete_rows_where(date_column, predicate) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# True when as-of day `col` reads a day whose label-based rows this run
   refreshed, at most `reach_days` back (trailing-window marts): the fixed
   window and the run's range, plus the `reach_days` after each refreshed day.
   Qualify `col` (t.date): a bare `date` would bind to the refresh table's. #}
{% macro label_refreshed_as_of(col, reach_days) -%}
    ({{ col }} <= {{ max_date() }} and ({{ col }} >= cast({{ label_window_start() }} as date)
        or exists (select 1 from {{ ref('int_label_refresh_days') }} r
                   where {{ col }} between r.date and r.date + {{ reach_days }})))
{%- endmacro %}
