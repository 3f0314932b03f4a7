{#- Where DuckDB and Spark SQL differ, one macro each, dispatched on the adapter (default__ = DuckDB).
    Everything else in the models is SQL both engines read (orchestration/lib/engine.py, README: Apache Spark). -#}

{#- Register the raw layer for the engine before a build (on-run-start): DuckDB loads it into its own
    tables; Spark reads the Parquet the run landed (raw/<table>/_partition_date=<day>/, quality/gate_results/). -#}
{% macro register_engine_sources() -%}
    {{ return(adapter.dispatch('register_engine_sources')()) }}
{%- endmacro %}

{% macro default__register_engine_sources() -%}{%- endmacro %}

{% macro spark__register_engine_sources() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set root = env_var('IMPACT_LEDGER_SPARK_DIR', '') -%}
    {%- if not root -%}
        {{ exceptions.raise_compiler_error("the spark target needs IMPACT_LEDGER_SPARK_DIR (the folder of the raw Parquet; orchestration/lib/engine.py sets it)") }}
    {%- endif -%}
    {%- do run_query('create database if not exists raw') -%}
    {%- do run_query('create database if not exists quality') -%}
    {#- a run process's own dbt registered the raw tables already (orchestration/lib/engine.py: before_build) -#}
    {%- if env_var('IMPACT_LEDGER_SPARK_RAW_REGISTERED', '') != '1' -%}
        {%- for node in graph.sources.values() if node.source_name == 'raw' -%}
            {%- do run_query('create or replace view raw.' ~ node.name ~ ' as select * from parquet.`' ~ root ~ '/raw/' ~ node.name ~ '`') -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do run_query('create or replace view quality.gate_results as select * from parquet.`' ~ root ~ '/quality/gate_results`') -%}
{%- endmacro %}

{#- DuckDB's worker threads for the invocation when IMPACT_LEDGER_DUCKDB_THREADS is set (unset: DuckDB's default,
    one per core). A setting of the database, not of a cursor: one SET at the start covers every model and test. -#}
{% macro duckdb_threads() -%}
    {%- set threads = env_var('IMPACT_LEDGER_DUCKDB_THREADS', '') -%}
    {%- if target.type == 'duckdb' and threads -%}set threads = {{ threads | int }}{%- endif -%}
{%- endmacro %}

{#- Incremental marts by day. DuckDB: a pre-hook deletes the days (or rows) a run recomputes and the run
    appends them again. Spark (Parquet tables partitioned by their day): the same delete, emulated per
    partition: the rows of the touched days that stay are set aside, those days' partitions are
    dropped, the kept rows go back, and the run appends the recomputed ones. -#}
{% macro day_partitions(date_column) -%}
    {{ return(adapter.dispatch('day_partitions')(date_column)) }}
{%- endmacro %}

{% macro default__day_partitions(date_column) -%}{{ return(none) }}{%- endmacro %}

{% macro spark__day_partitions(date_column) -%}{{ return([date_column]) }}{%- endmacro %}

{#- `delete from this as old where <predicate>` on either engine. Spark: `date_column` partitions the
    table (only the touched days are rewritten); none: the table is not partitioned (rewritten whole).
    `whole_days`: the predicate holds for every row of a day it holds for (a range of days), so Spark drops
    the touched days' partitions and keeps no row of them (two jobs fewer per model and run). -#}
{% macro delete_rows_where(date_column, predicate, whole_days=false) -%}
    {{ return(adapter.dispatch('delete_rows_where')(date_column, predicate, whole_days)) }}
{%- endmacro %}

{% macro default__delete_rows_where(date_column, predicate, whole_days=false) -%}
    delete from {{ this }} as old where {{ predicate }}
{%- endmacro %}

{% macro spark__delete_rows_where(date_column, predicate, whole_days=false) -%}
    {%- set keep = this.incorporate(path={'identifier': this.identifier ~ '__kept'}) -%}
    {#- the columns of the kept rows' insert (a catalog call: not made when no row is kept) -#}
    {%- set partitioned = date_column is not none and config.get('partition_by') -%}
    {%- set cols = '' if partitioned and whole_days else
        adapter.get_columns_in_relation(this) | map(attribute='quoted') | join(', ') -%}
    {#- a table not partitioned by its day (no partition_by) is rewritten whole, as one without a day -#}
    {%- if not partitioned -%}
        {%- do run_query('drop table if exists ' ~ keep) -%}
        {%- do run_query('create table ' ~ keep ~ ' using parquet as select * from ' ~ this ~ ' as old where not (' ~ predicate ~ ')') -%}
        {%- do run_query('insert overwrite table ' ~ this ~ ' select ' ~ cols ~ ' from ' ~ keep) -%}
        {%- do run_query('drop table if exists ' ~ keep) -%}
    {%- else -%}
        {%- set touched = run_query('select distinct cast(old.' ~ date_column ~ ' as string) as d from ' ~ this ~ ' as old where ' ~ predicate) -%}
        {%- set days = touched.columns[0].values() | list -%}
        {%- if days -%}
            {%- set day_list = "'" ~ days | join("', '") ~ "'" -%}
            {%- if not whole_days -%}
                {%- do run_query('drop table if exists ' ~ keep) -%}
                {%- do run_query('create table ' ~ keep ~ ' using parquet as select * from ' ~ this ~ ' as old where cast(old.' ~ date_column ~ ' as string) in (' ~ day_list ~ ') and not (' ~ predicate ~ ')') -%}
            {%- endif -%}
            {%- for chunk in days | batch(200) -%}
                {%- set specs = [] -%}
                {%- for d in chunk -%}{%- do specs.append("partition (" ~ date_column ~ " = '" ~ d ~ "')") -%}{%- endfor -%}
                {%- do run_query('alter table ' ~ this ~ ' drop if exists ' ~ specs | join(', ')) -%}
            {%- endfor -%}
            {%- if not whole_days -%}
                {%- do run_query('insert into ' ~ this ~ ' select ' ~ cols ~ ' from ' ~ keep) -%}
                {%- do run_query('drop table if exists ' ~ keep) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- ---- expressions -#}

{#- the rows where cond is true: 0 when none (DuckDB's count_if, a sum of booleans, gives NULL when cond is NULL
    on every row: a day without labels stored 0 true positives beside NULL false negatives); the types the
    warehouses hold kept (DuckDB's HUGEINT, Spark's bigint) -#}
{% macro count_where(cond) -%}{{ return(adapter.dispatch('count_where')(cond)) }}{%- endmacro %}
{% macro default__count_where(cond) -%}coalesce(count_if({{ cond }}), 0){%- endmacro %}
{% macro spark__count_where(cond) -%}coalesce(sum(cast({{ cond }} as bigint)), 0){%- endmacro %}

{#- the list of quantiles `qs` (a Jinja list) of expr, linear interpolation (DuckDB quantile_cont, Spark
    percentile: the same definition) -#}
{% macro quantiles_cont(expr, qs) -%}{{ return(adapter.dispatch('quantiles_cont')(expr, qs)) }}{%- endmacro %}
{% macro default__quantiles_cont(expr, qs) -%}quantile_cont({{ expr }}, [{{ qs | join(', ') }}]){%- endmacro %}
{% macro spark__quantiles_cont(expr, qs) -%}percentile({{ expr }}, array({{ qs | join(', ') }})){%- endmacro %}

{#- element i (1-based) of list / array `items` -#}
{% macro item(items, i) -%}{{ return(adapter.dispatch('item')(items, i)) }}{%- endmacro %}
{% macro default__item(items, i) -%}{{ items }}[{{ i }}]{%- endmacro %}
{% macro spark__item(items, i) -%}element_at({{ items }}, {{ i }}){%- endmacro %}

{#- how many elements of list `edges` are below `value` -#}
{% macro count_below(edges, value) -%}{{ return(adapter.dispatch('count_below')(edges, value)) }}{%- endmacro %}
{% macro default__count_below(edges, value) -%}len(list_filter({{ edges }}, x -> {{ value }} > x)){%- endmacro %}
{% macro spark__count_below(edges, value) -%}size(filter({{ edges }}, x -> {{ value }} > x)){%- endmacro %}

{#- hours from timestamp `start` to timestamp `end` -#}
{% macro hours_between(start, end) -%}{{ return(adapter.dispatch('hours_between')(start, end)) }}{%- endmacro %}
{% macro default__hours_between(start, end) -%}epoch({{ end }} - {{ start }}) / 3600.0{%- endmacro %}
{% macro spark__hours_between(start, end) -%}
    timestampdiff(MICROSECOND, {{ start }}, {{ end }}) / cast(3600000000 as double)
{%- endmacro %}

{#- microseconds since 1970-01-01 00:00 of a timestamp (a bigint) -#}
{% macro epoch_microseconds(ts) -%}{{ return(adapter.dispatch('epoch_microseconds')(ts)) }}{%- endmacro %}
{% macro default__epoch_microseconds(ts) -%}epoch_us({{ ts }}){%- endmacro %}
{% macro spark__epoch_microseconds(ts) -%}unix_micros(cast({{ ts }} as timestamp)){%- endmacro %}

{#- the value of `arg` on the row where `key` is largest (DuckDB arg_max, Spark max_by) -#}
{% macro max_by(arg, key) -%}{{ return(adapter.dispatch('max_by')(arg, key)) }}{%- endmacro %}
{% macro default__max_by(arg, key) -%}arg_max({{ arg }}, {{ key }}){%- endmacro %}
{% macro spark__max_by(arg, key) -%}max_by({{ arg }}, {{ key }}){%- endmacro %}

{#- Pre- and post-hook pair of a model whose hash joins must build on the side written on the right. DuckDB
    picks the build side by its row estimates, and it estimates a day's refreshed predictions at a few percent
    of their rows (a default selectivity per filter); at 1M predictions a day it then built model_health_daily's
    hash table on the 9M predictions instead of their 4.9M outcomes: 2.9 s against 1.7 s. A database-wide
    setting: the post-hook restores it, and with more than one dbt thread the models running meanwhile plan
    with it too, as do later queries when a failed model skips the post-hook (the same results, at their
    own speed). Spark: nothing. -#}
{% macro hash_join_build_as_written() -%}{{ return(adapter.dispatch('hash_join_build_as_written')()) }}{%- endmacro %}
{% macro default__hash_join_build_as_written() -%}set disabled_optimizers = 'build_side_probe_side'{%- endmacro %}
{% macro spark__hash_join_build_as_written() -%}{%- endmacro %}
{% macro hash_join_build_by_estimate() -%}{{ return(adapter.dispatch('hash_join_build_by_estimate')()) }}{%- endmacro %}
{% macro default__hash_join_build_by_estimate() -%}reset disabled_optimizers{%- endmacro %}
{% macro spark__hash_join_build_by_estimate() -%}{%- endmacro %}

{#- true when a double is neither infinite nor NaN -#}
{% macro is_finite(expr) -%}{{ return(adapter.dispatch('is_finite')(expr)) }}{%- endmacro %}
{% macro default__is_finite(expr) -%}isfinite({{ expr }}){%- endmacro %}
{% macro spark__is_finite(expr) -%}
    (not isnan({{ expr }}) and abs({{ expr }}) < cast('Infinity' as double))
{%- endmacro %}

{#- `a <semi_join> b on ...`: the rows of a that have a match in b (DuckDB SEMI JOIN, Spark LEFT SEMI JOIN) -#}
{% macro semi_join() -%}{{ return(adapter.dispatch('semi_join')()) }}{%- endmacro %}
{% macro default__semi_join() -%}semi join{%- endmacro %}
{% macro spark__semi_join() -%}left semi join{%- endmacro %}
{#- `a <anti_join> b on ...`: the rows of a without a match in b -#}
{% macro anti_join() -%}{{ return(adapter.dispatch('anti_join')()) }}{%- endmacro %}
{% macro default__anti_join() -%}anti join{%- endmacro %}
{% macro spark__anti_join() -%}left anti join{%- endmacro %}

{#- ---- row sources -#}

{#- one row per day from `start` to `end` (dates; none when end < start), column `column` -#}
{% macro days_from_to(start, end, column) -%}
    {{ return(adapter.dispatch('days_from_to')(start, end, column)) }}
{%- endmacro %}
{% macro default__days_from_to(start, end, column) -%}
    (select cast(generate_series as date) as {{ column }} from generate_series({{ start }}, {{ end }}, interval 1 day))
{%- endmacro %}
{% macro spark__days_from_to(start, end, column) -%}
    (select {{ column }} from (select explode(sequence({{ start }}, greatest({{ start }}, {{ end }}), interval 1 day))
        as {{ column }}) as days where {{ column }} <= {{ end }})
{%- endmacro %}

{#- one row per day from column `start` to column `end` of the one-row relation `source` (no row when either is null) -#}
{% macro days_of_bounds(start, end, column, source) -%}
    {{ return(adapter.dispatch('days_of_bounds')(start, end, column, source)) }}
{%- endmacro %}
{% macro default__days_of_bounds(start, end, column, source) -%}
    (select cast(unnest(generate_series({{ start }}, {{ end }}, interval 1 day)) as date) as {{ column }} from {{ source }})
{%- endmacro %}
{% macro spark__days_of_bounds(start, end, column, source) -%}
    (select explode(sequence({{ start }}, {{ end }}, interval 1 day)) as {{ column }} from {{ source }})
{%- endmacro %}

{#- one row per integer of the Jinja list `values`, column `column` -#}
{% macro integer_rows(values, column) -%}
    {{ return(adapter.dispatch('integer_rows')(values, column)) }}
{%- endmacro %}
{% macro default__integer_rows(values, column) -%}
    (select unnest([{{ values | join(', ') }}]) as {{ column }})
{%- endmacro %}
{% macro spark__integer_rows(values, column) -%}
    (select explode(array({{ values | join(', ') }})) as {{ column }})
{%- endmacro %}

{#- A bin edge as text, the same on both engines: 4 decimals, trailing zeros dropped but one (0.0001, 12.5, 3.0).
    A double cast to text differs (Spark writes 1.0E-4 below 0.001, DuckDB 0.0001): real risk scores' low deciles
    gave the two engines different bin labels. -#}
{% macro edge_text(value) -%}
    regexp_replace(regexp_replace({{ adapter.dispatch('four_decimals')(value) }}, '0+$', ''), '[.]$', '.0')
{%- endmacro %}

{% macro default__four_decimals(value) -%}printf('%.4f', {{ value }}){%- endmacro %}

{% macro spark__four_decimals(value) -%}format_string('%.4f', {{ value }}){%- endmacro %}
