{# One label per prediction, from label events with labeled_at in
   [since, end of max_date]: a human_review label overrides an implicit one,
   and within a source the latest label wins. Bounding by max_date keeps a
   run's output a function of data known by its last day (reproducible). #}
{% macro resolved_labels(since) -%}
    select prediction_id, label, labeled_at, label_source,
        min(labeled_at) over (partition by prediction_id) as first_labeled_at
    from {{ ref('stg_labels') }}
    where labeled_at >= {{ since }} and {{ known_by_max_date('labeled_at') }}
    qualify row_number() over (partition by prediction_id order by source_priority desc, labeled_at desc) = 1
{%- endmacro %}

{# The latest human-review label per prediction (the trusted sample). #}
{% macro human_review_labels(since) -%}
    select prediction_id, label
    from {{ ref('stg_labels') }}
    where label_source = 'human_review' and labeled_at >= {{ since }} and {{ known_by_max_date('labeled_at') }}
    qualify row_number() over (partition by prediction_id order by labeled_at desc) = 1
{%- endmacro %}

{# Equal-width score bin 0..9 (a score of exactly 1 falls in bin 9). #}
{% macro score_bin(score) -%}
    least(cast(floor({{ score }} * 10) as integer), 9)
{%- endmacro %}
