-- A unit belongs to the first variant it was assigned (ingestion already
-- quarantines later ones; this keeps the rule true for any source).
select experiment_id, user_id, variant, assigned_at, cast(assigned_at as date) as assigned_date
from {{ source('raw', 'assignments') }}
where {{ not_held_back('assignments') }}
-- ties: a stable choice
qualify row_number() over (partition by experiment_id, user_id order by assigned_at, variant) = 1
