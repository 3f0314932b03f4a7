{# The monitored features: every feature_* column of raw.predictions (found at
   run time, so a new feature is monitored without code changes), plus score. #}
{% macro monitored_features() %}
    {%- set features = [{'name': 'score', 'numeric': true}] -%}
    {%- if execute -%}
        {%- for col in adapter.get_columns_in_relation(source('raw', 'predictions')) -%}
            {%- if col.name.startswith('feature_') -%}
                {%- do features.append({'name': col.name, 'numeric': col.is_number()}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(features) }}
{% endmacro %}

{# Long format of one kind of feature (numeric or categorical) of `relation`:
   one row per prediction and feature with `value`. #}
{% macro features_long(relation, numeric) %}
    {%- set selected = monitored_features() | selectattr('numeric', 'equalto', numeric) | list -%}
    {%- if selected | length == 0 -%}
        select null::date as date, null::varchar as model_id, null::varchar as model_version,
            null::varchar as feature, {{ 'null::double' if numeric else 'null::varchar' }} as value
        where false
    {%- else -%}
        {%- for f in selected %}
        select date, model_id, model_version, '{{ f.name }}' as feature,
            {{ 'cast(' ~ f.name ~ ' as double)' if numeric else 'cast(' ~ f.name ~ ' as varchar)' }} as value
        from {{ relation }}
        {% if not loop.last %}union all{% endif %}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
