{{ config(pre_hook="{{ delete_partition_range('date', var('kpi_lookback_days')) }}") }}

{{ kpi_select(['segment', 'country']) }}
