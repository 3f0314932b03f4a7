select session_id, user_id, started_at, cast(started_at as date) as session_date
from {{ source('raw', 'sessions') }}
where {{ not_held_back('sessions') }}
