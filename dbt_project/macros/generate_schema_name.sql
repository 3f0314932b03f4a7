{# Use the configured schema name as is (marts, staging) instead of dbt's
   default "<target schema>_<custom schema>", so analysts query marts.kpi_daily. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
