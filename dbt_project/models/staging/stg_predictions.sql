select
    prediction_id,
    model_id,
    model_version,
    user_id,
    predicted_at,
    cast(predicted_at as date) as prediction_date,
    score,
    threshold,
    score >= threshold as decision
    {%- for f in monitored_features() if f.name != 'score' %},
    {{ f.name }}
    {%- endfor %}
from {{ source('raw', 'predictions') }}
