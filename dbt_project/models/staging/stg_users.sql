select user_id, signup_at, country, segment, gender, age_band
from {{ source('raw', 'users') }}
