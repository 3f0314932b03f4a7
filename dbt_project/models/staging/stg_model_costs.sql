select date, model_id, serving_cost, review_cost, serving_cost + review_cost as total_cost
from {{ source('raw', 'model_costs') }}
where {{ not_held_back('model_costs') }}
