{# Grain test of a small table without a date (e.g. intermediate.int_reference_profiles). #}
{% test unique_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as duplicates
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
