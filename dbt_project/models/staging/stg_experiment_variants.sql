select experiment_id, variant, expected_share
from {{ source('raw', 'experiment_variants') }}
