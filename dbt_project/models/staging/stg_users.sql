{#- the contract's columns, plus any users column the project file declares as a protected attribute #}
{%- set base = ['user_id', 'signup_at', 'country', 'segment', 'gender', 'age_band'] %}
{%- set extra = [] %}
{%- for cols in var('protected_attributes', {}).values() %}{% for c in cols %}
    {%- if c not in base and c not in extra %}{% do extra.append(c) %}{% endif %}
{%- endfor %}{% endfor %}
{%- if execute and extra %}
{%- set present = adapter.get_columns_in_relation(source('raw', 'users')) | map(attribute='name') | list %}
{%- for c in extra if c not in present %}
{{ exceptions.raise_compiler_error("project file protected_attributes: column '" ~ c ~ "' is not in raw.users (columns: " ~ present | join(', ') ~ ")") }}
{%- endfor %}
{%- endif %}
-- country, segment, gender and age_band are optional in the contract (a source without them loads
-- nulls); a null descriptive or protected value is the group 'unknown', so every user has a group;
-- a whole number of a float column reads '2', not '2.0' (group_text)
select
    user_id,
    signup_at
    {%- for c in base[2:] + extra %},
    {%- set as_text = 'cast(' ~ adapter.quote(c) ~ ' as ' ~ dbt.type_string() ~ ')' %}
    coalesce({{ group_text(as_text) }}, 'unknown') as {{ adapter.quote(c) }}
    {%- endfor %}
from {{ source('raw', 'users') }}
