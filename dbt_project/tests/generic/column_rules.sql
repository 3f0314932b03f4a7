{# A model's column rules in one test: one dbt node and one Dagster check per model, not one per column and
   rule (each is a node dbt schedules and a check Dagster records, ~20 ms a run each, whatever the data).
   not_null: columns never null; between_zero_and_one: rates and shares, 0..1 when not null. Each failing
   row names its column, its rule and the value (dbt test --store-failures keeps them). #}
{% test column_rules(model, not_null=[], between_zero_and_one=[]) %}
{%- set rules = [] -%}
{%- for column in not_null -%}
    {%- do rules.append((column, 'not_null', column ~ ' is null')) -%}
{%- endfor -%}
{%- for column in between_zero_and_one -%}
    {%- do rules.append((column, 'between_zero_and_one', column ~ ' is not null and not (' ~ column ~ ' >= 0 and ' ~ column ~ ' <= 1)')) -%}
{%- endfor -%}
{%- for column, rule, failing in rules %}
select '{{ column }}' as column_name, '{{ rule }}' as rule, cast({{ column }} as {{ dbt.type_string() }}) as value
from {{ model }}
where {{ failing }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}
