select feedback_id, prediction_id, user_id, created_at, value
from {{ source('raw', 'feedback') }}
where {{ not_held_back('feedback') }}
