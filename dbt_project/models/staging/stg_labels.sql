select
    prediction_id,
    label,
    labeled_at,
    label_source,
    -- human review is trusted over implicit signals
    case label_source when 'human_review' then 2 else 1 end as source_priority
from {{ source('raw', 'labels') }}
where {{ not_held_back('labels') }}
