{{ config(pre_hook="{{ delete_partition_range('date') }}") }}

{{ kpi_select() }}
