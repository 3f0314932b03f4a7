{# var('leading_lagging'), checked before it is spliced into SQL: a wrong
   name or number fails the run with a message naming the key, not with a
   binder error deep in the compiled query. Names are checked against the
   columns of the marts they come from (max_psi comes from feature_drift_daily). #}
{% macro leading_lagging_config() -%}
    {%- set cfg = var('leading_lagging') -%}
    {%- set where = "var 'leading_lagging' (dbt_project.yml or --vars)" -%}
    {%- for key in ['window_days', 'max_lag_days', 'min_days', 'health_metrics', 'kpis'] -%}
        {%- if key not in cfg -%}
            {{ exceptions.raise_compiler_error(where ~ ": missing key '" ~ key ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {%- for key in ['window_days', 'max_lag_days', 'min_days'] -%}
        {%- if cfg[key] is not number or cfg[key] is boolean or cfg[key] != cfg[key] | int or cfg[key] < 0 -%}
            {{ exceptions.raise_compiler_error(where ~ ": " ~ key ~ " must be a whole number >= 0, got '" ~ cfg[key] ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {#- optional: the family-wise error rate of the leads (Holm over the whole search) -#}
    {%- if 'alpha' in cfg and (cfg.alpha is not number or cfg.alpha is boolean or cfg.alpha <= 0 or cfg.alpha >= 1) -%}
        {{ exceptions.raise_compiler_error(where ~ ": alpha must be a number in (0, 1), got '" ~ cfg.alpha ~ "'") }}
    {%- endif -%}
    {%- if cfg.min_days < 3 or cfg.min_days > cfg.window_days -%}
        {{ exceptions.raise_compiler_error(where ~ ": min_days must lie in 3..window_days (" ~ cfg.window_days
            ~ "), got " ~ cfg.min_days ~ " (a correlation of fewer than 3 changes is noise)") }}
    {%- endif -%}
    {%- for key, model, extra in [('health_metrics', 'model_health_daily', ['max_psi']), ('kpis', 'kpi_daily', [])] -%}
        {%- if cfg[key] is string or cfg[key] is not iterable or cfg[key] | length == 0 -%}
            {{ exceptions.raise_compiler_error(where ~ ": " ~ key ~ " must be a non-empty list") }}
        {%- endif -%}
        {#- a relation not built yet (sqlfluff's compile on an empty database) has nothing to check against -#}
        {%- if execute and load_relation(ref(model)) is not none -%}
            {%- set known = adapter.get_columns_in_relation(ref(model)) | map(attribute='name') | list + extra -%}
            {%- for name in cfg[key] if name not in known -%}
                {{ exceptions.raise_compiler_error(where ~ ": " ~ key ~ " entry '" ~ name ~ "' is not a column of marts."
                    ~ model ~ "; known: " ~ known | join(', ')) }}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(cfg) }}
{%- endmacro %}
