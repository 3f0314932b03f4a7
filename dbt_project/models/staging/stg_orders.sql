select
    order_id,
    user_id,
    session_id,
    ordered_at,
    cast(ordered_at as date) as order_date,
    revenue,
    status,
    status = 'completed' as is_completed
from {{ source('raw', 'orders') }}
where {{ not_held_back('orders') }}
