{#- The users columns of the project file's protected attributes (dbt var protected_attributes: {name: [users
    columns]}; an intersection lists several), each once, in the order first named. -#}
{% macro protected_attribute_columns() -%}
    {%- set columns = [] %}
    {%- for cols in var('protected_attributes', {}).values() %}{% for c in cols %}
        {%- if c not in columns %}{% do columns.append(c) %}{% endif %}
    {%- endfor %}{% endfor %}
    {{- return(columns) }}
{%- endmacro %}

{#- Each user with those columns as strings, a missing value as 'unknown'. -#}
{% macro attribute_users() -%}
    select user_id
        {%- for c in protected_attribute_columns() %}
        , coalesce(cast({{ adapter.quote(c) }} as {{ dbt.type_string() }}), 'unknown') as {{ adapter.quote(c) }}
        {%- endfor %}
    from {{ ref('stg_users') }}
{%- endmacro %}

{#- A users value as the text of its group: a whole number of a float column is '2', not '2.0' (DuckDB and
    Spark both cast 2.0 to '2.0'; a coded Parquet column read 1.0, 2.0); the same SQL on both engines, and
    impact-ledger init shows its proposal's values so (orchestration/lib/project_init.py _group_text). -#}
{% macro group_text(value) -%}
    case
        when regexp_replace({{ value }}, '^-?[0-9]+[.]0$', '') = ''
            then regexp_replace({{ value }}, '[.]0$', '')
        else {{ value }}
    end
{%- endmacro %}
