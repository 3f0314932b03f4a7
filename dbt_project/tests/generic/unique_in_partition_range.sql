{# Grain test scoped to the run's date range, so its cost does not grow with history. #}
{% test unique_in_partition_range(model, columns, date_column) %}
select {{ columns | join(', ') }}, count(*) as duplicates
from {{ model }}
where {{ date_column }} between {{ min_date() }} and {{ max_date() }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
