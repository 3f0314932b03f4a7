-- One label per prediction as known at the end of the run's last day:
-- a human_review label overrides an implicit one; within a source the
-- latest label wins. Bounding by max_date keeps re-runs reproducible.
select prediction_id, label, labeled_at, label_source
from {{ ref('stg_labels') }}
where {{ known_by_max_date('labeled_at') }}
qualify row_number() over (
    partition by prediction_id order by source_priority desc, labeled_at desc
) = 1
