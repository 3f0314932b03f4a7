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

{# Pre-hook of incremental marts: drop the run's date range before it is
   inserted again (idempotent partitions, including days that now have no rows). #}
{% macro delete_partition_range(date_column='date') -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} between {{ min_date() }} and {{ max_date() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
