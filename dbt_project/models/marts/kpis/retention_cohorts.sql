{{ config(pre_hook="{{ delete_partition_range('matured_date') }}", partition_by=day_partitions('matured_date')) }}

-- Dk retention: share of a cohort active (at least one session) on day
-- cohort_date + k. A (cohort, horizon) row is written by the run whose range
-- holds its matured_date = cohort_date + k, so an immature cohort never
-- appears as a low number, and each run only reads its own days of sessions.

with horizons as (
    select horizon_days from {{ integer_rows(var('retention_horizons'), 'horizon_days') }} as h
),

matured_days as (
    select matured_date from {{ days_from_to(min_date(), max_date(), 'matured_date') }} as d
),

active as (
    select distinct user_id, session_date
    from {{ ref('stg_sessions') }}
    where {{ in_partition_range('started_at') }}
),

signup_members as (
    select 'signup' as cohort_type, cast(null as {{ dbt.type_string() }}) as experiment_id,
        cast(null as {{ dbt.type_string() }}) as variant,
        user_id, cast(signup_at as date) as cohort_date
    from {{ ref('stg_users') }}
),

assignment_members as (
    select 'assignment' as cohort_type, experiment_id, variant, user_id, assigned_date as cohort_date
    from {{ ref('stg_assignments') }}
),

members as (
    select * from signup_members
    union all
    select * from assignment_members
)

select
    m.cohort_type,
    m.experiment_id,
    m.variant,
    m.cohort_date,
    h.horizon_days,
    d.matured_date,
    count(*) as cohort_users,
    count(a.user_id) as retained_users,
    count(a.user_id)::double / count(*) as retention_rate
from matured_days d
cross join horizons h
join members m on m.cohort_date = d.matured_date - h.horizon_days::int
left join active a on a.user_id = m.user_id and a.session_date = d.matured_date
group by all
