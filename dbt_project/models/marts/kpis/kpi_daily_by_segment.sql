{{ config(pre_hook="{{ delete_partition_range('date', var('kpi_lookback_days')) }}",
          partition_by=day_partitions('date')) }}

{{ kpi_select(['segment', 'country']) }}
