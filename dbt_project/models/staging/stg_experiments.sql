select experiment_id, model_id, control_variant, start_date, end_date
from {{ source('raw', 'experiments') }}
