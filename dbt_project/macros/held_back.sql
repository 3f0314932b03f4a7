{#- A failed quality gate holds its day back: the staging view of a dated raw table excludes the rows
    of every day whose blocking gate failed (one verdict per suite and day in quality.gate_results, written
    by the Dagster checks; the raw loader creates the table, so it exists before any dbt build). The
    marts then never include them, identically in a backfill and in day-by-day runs; re-running a fixed
    day replaces its verdict and brings its rows back. Not a dbt source: it is no input asset of the
    dbt models, only their filter. -#}
{% macro not_held_back(table, day_column='_partition_date') -%}
not exists (
        select 1 from quality.gate_results g
        where g.table_name = '{{ table }}' and not g.passed and g.date = {{ day_column }}
    )
{%- endmacro %}
