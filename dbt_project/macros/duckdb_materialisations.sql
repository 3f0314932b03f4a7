{#- The project's DuckDB materialisations: dbt-duckdb's incremental and dbt's view materialisations with a
    shorter path for the project's own models on a normal run; anything else is theirs. Spark keeps dbt-spark's. -#}

{#- dbt-duckdb's incremental materialisation, with a shorter path for the project's marts on a normal run.

    A run of an append mart (a pre-hook deletes the days it recomputes) costs dbt-duckdb five statements:
    the model into a temporary table, two pairs of column listings (widening the target's types, then the
    schema-change check), the insert from the temporary table and its drop. On a small day that is most of
    a mart's time (~0.04 s of a 0.05 s model, a dozen marts a run). Here, when the table exists, the run is
    not a full refresh, the strategy is `append` and `on_schema_change` is `fail` (the marts' setting), the
    same outcome takes two: one query compares the model's columns and types (DuckDB's DESCRIBE of the
    query, which plans it without running it) with the table's, and fails naming the differences as
    dbt would; then the model's rows are inserted by name. Everything else (a first build, a full
    refresh, other strategies or settings, grants, an enforced contract, Python models, MotherDuck) is
    dbt-duckdb's own materialisation. -#}
{% materialization incremental, adapter='duckdb' -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set short_path = existing is not none and existing.is_table and not should_full_refresh()
        and model['language'] == 'sql'
        and config.get('incremental_strategy') == 'append'
        and config.get('on_schema_change') == 'fail'
        and duckdb_plain_config() -%}
    {%- if not short_path -%}
        {{ return(dbt.materialization_incremental_duckdb()) }}
    {%- endif -%}
    {%- set target = this.incorporate(type='table') -%}
    {{ duckdb_pre_hooks() }}

    {%- set changed = run_query(columns_changed_sql(existing, compiled_code)) -%}
    {%- if changed.rows | length > 0 -%}
        {%- set lines = [] -%}
        {%- for row in changed.rows -%}
            {%- do lines.append(row[0] ~ ': ' ~ (row[1] or 'absent') ~ ' in the table, ' ~ (row[2] or 'absent') ~ ' in the model') -%}
        {%- endfor -%}
        {{ exceptions.raise_compiler_error(
            "The source and target schemas on this incremental model are out of sync!\n"
            ~ "  They can be reconciled in several ways:\n"
            ~ "    - set the `on_schema_change` config to `append_new_columns` or `sync_all_columns`.\n"
            ~ "    - Re-run the incremental model with `full_refresh: True` to update the target schema.\n"
            ~ "    - update the schema manually and re-run the process.\n\n"
            ~ "  Columns of " ~ target ~ " that differ:\n    " ~ lines | join('\n    ')) }}
    {%- endif -%}

    {%- set insert -%}
        insert into {{ target }} by name (
{{ compiled_code }}
        )
    {%- endset -%}
    {{ duckdb_main_statement_then_commit(target, insert) }}
    {{ return({'relations': [target]}) }}
{%- endmaterialization %}

{#- dbt's view materialisation on DuckDB, in one statement where DuckDB allows it.

    dbt's default creates the view under a temporary name, renames the existing view away, renames the new
    one into place and drops the old: four statements, made for databases that cannot replace a view in
    place. DuckDB's `create or replace view` does it in one, inside the run's transaction. A run rebuilds
    the ten staging views each time (~8 ms of dbt's per-statement work each, saved). A relation of another
    type in the way (a table), grants, an enforced contract or MotherDuck: dbt's own materialisation. -#}
{% materialization view, adapter='duckdb' -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if not ((existing is none or existing.is_view) and duckdb_plain_config()) -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}
    {%- set target = this.incorporate(type='view') -%}
    {{ duckdb_pre_hooks() }}
    {%- set create_view -%}
        create or replace view {{ target }} as (
{{ sql }}
        )
    {%- endset -%}
    {{ duckdb_main_statement_then_commit(target, create_view) }}
    {{ return({'relations': [target]}) }}
{%- endmaterialization %}

{#- No grants, no enforced contract, not MotherDuck: what dbt's materialisations handle and the short paths do not. -#}
{% macro duckdb_plain_config() -%}
    {%- set contract = config.get('contract') -%}
    {{ return(not config.get('grants') and not (contract and contract.enforced) and not adapter.is_motherduck()) }}
{%- endmacro %}

{#- The pre-hooks outside and inside the transaction, as dbt's materialisations run them. -#}
{% macro duckdb_pre_hooks() -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    -- `BEGIN` happens here:
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
{%- endmacro %}

{#- The end of a materialisation whose work is one statement (`main_sql`): it runs as dbt's `main` statement,
    then the docs, the post-hooks in and after the transaction, and the commit, as dbt's materialisations do.
    `main_sql` puts the model on lines of its own: a last line that is a `--` comment must not swallow the
    closing parenthesis. -#}
{% macro duckdb_main_statement_then_commit(target, main_sql) -%}
    {% call statement('main') -%}
        {{ main_sql }}
    {%- endcall %}
    {% do persist_docs(target, model) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    -- `COMMIT` happens here
    {% do adapter.commit() %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
{%- endmacro %}

{#- The columns whose type differs between `relation` and the query `sql` (or that only one of them has):
    name, the table's type, the query's type. DESCRIBE plans the query without running it. -#}
{% macro columns_changed_sql(relation, sql) -%}
    with model_columns as (
        select lower(column_name) as name, column_type as data_type from (describe (
{{ sql }}
        ))
    ),
    table_columns as (
        select lower(column_name) as name, data_type
        from information_schema.columns
        where table_catalog = '{{ relation.database }}' and table_schema = '{{ relation.schema }}'
            and table_name = '{{ relation.identifier }}'
    )
    select coalesce(t.name, m.name) as name, t.data_type as table_type, m.data_type as model_type
    from table_columns t
    full join model_columns m on m.name = t.name
    where t.data_type is distinct from m.data_type
    order by 1
{%- endmacro %}
