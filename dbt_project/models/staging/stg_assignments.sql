-- A unit belongs to the first variant it was assigned (ingestion already
-- quarantines later ones; this keeps the rule true for any source).
select experiment_id, user_id, variant, assigned_at, cast(assigned_at as date) as assigned_date
from (
    select experiment_id, user_id, variant, assigned_at,
        -- ties: a stable choice
        row_number() over (partition by experiment_id, user_id order by assigned_at, variant) as assignment_rank
    from {{ source('raw', 'assignments') }}
    where {{ not_held_back('assignments') }}
) as ranked
where assignment_rank = 1
