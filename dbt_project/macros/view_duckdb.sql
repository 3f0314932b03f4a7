{#- dbt's view materialisation on DuckDB, in one statement where DuckDB allows it.

    dbt's default creates the view under a temporary name, renames the existing view away, renames the new
    one into place and drops the old: four statements, made for databases that cannot replace a view in
    place. DuckDB's `create or replace view` does it in one, inside the run's transaction. A run rebuilds
    the ten staging views each time (~8 ms of dbt's per-statement work each, saved). A relation of another
    type in the way (a table), grants, an enforced contract or MotherDuck: dbt's own materialisation. -#}
{% materialization view, adapter='duckdb' -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set contract = config.get('contract') -%}
    {%- set short_path = (existing is none or existing.is_view)
        and not config.get('grants')
        and not (contract and contract.enforced)
        and not adapter.is_motherduck() -%}
    {%- if not short_path -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}
    {%- set target = this.incorporate(type='view') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- `BEGIN` happens here:
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set create_view -%}
        create or replace view {{ target }} as (
{{ sql }}
        )
    {%- endset -%}
    {{ duckdb_main_statement_then_commit(target, create_view) }}  {#- macros/incremental_duckdb.sql -#}
    {{ return({'relations': [target]}) }}
{%- endmaterialization %}
