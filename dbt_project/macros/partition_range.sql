{# The run's partition range, from the min_date / max_date vars. #}
{% macro min_date() -%} cast('{{ var("min_date") }}' as date) {%- endmacro %}
{% macro max_date() -%} cast('{{ var("max_date") }}' as date) {%- endmacro %}

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
        delete from {{ this }}
        where {{ date_column }} between cast({{ refresh_start(lookback_days) }} as date) and {{ max_date() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# Order-independent float aggregates: DuckDB sums doubles in parallel, so
   the last bits would change between re-runs; summing exact decimals keeps
   re-run marts bit-identical (15 decimals are far below any reported digit). #}
{% macro exact_sum(expr, scale=15) -%}
    cast(sum(cast({{ expr }} as decimal(38, {{ scale }}))) as double)
{%- endmacro %}

{% macro exact_avg(expr) -%}
    ({{ exact_sum(expr) }} / nullif(count({{ expr }}), 0))
{%- endmacro %}
