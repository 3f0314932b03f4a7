{#- the decision threshold: the logged one, else the model's in the project file (dbt var model_settings),
    else 0.5 (predictions.threshold is optional in the contract) #}
{%- set configured = [] %}
{%- for model_id, settings in var('model_settings', {}).items() if settings.get('threshold') is not none %}
{%- do configured.append((model_id, settings['threshold'])) %}
{%- endfor %}
{%- set threshold -%}
coalesce(
        threshold,
        {%- if configured %}
        case model_id
            {%- for model_id, value in configured %}
            when '{{ model_id }}' then {{ value }}
            {%- endfor %}
        end,
        {%- endif %}
        0.5
    )
{%- endset %}
select
    prediction_id,
    model_id,
    model_version,
    user_id,
    predicted_at,
    cast(predicted_at as date) as prediction_date,
    score,
    {{ threshold }} as threshold,
    case when threshold is not null then 'logged'
        {%- if configured %}
        when model_id in ({% for model_id, _ in configured %}'{{ model_id }}'{{ ', ' if not loop.last }}{% endfor %})
            then 'configured'
        {%- endif %}
        else 'default' end as threshold_source,
    score >= {{ threshold }} as decision
    {%- for f in monitored_features() if f.name != 'score' %},
    {{ f.column }}
    {%- endfor %}
from {{ source('raw', 'predictions') }}
where {{ not_held_back('predictions') }}
