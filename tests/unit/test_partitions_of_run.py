"""How a run of the command line is given its days: one day Dagster lists is its partition; anything else a range."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.defs.partitions import daily_partitions, run_days
from orchestration.runs import partitions_of_run


def test_a_listed_day_is_its_partition_and_today_a_day_to_come_or_several_days_are_a_range():
    today = datetime.now(UTC).date()
    yesterday, later = today - timedelta(days=1), today + timedelta(days=300)
    assert partitions_of_run(yesterday, yesterday) == {"partition_key": yesterday.isoformat()}
    for first, last in ((today, today), (later, later), (yesterday - timedelta(days=6), yesterday)):
        assert partitions_of_run(first, last) == {
            "tags": {
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            }
        }
        # Dagster runs each as given (a partition key it does not list would be refused) over exactly its days
        seen = []

        @dg.asset(partitions_def=daily_partitions)
        def days(context: dg.AssetExecutionContext) -> None:
            seen.append(run_days(context))

        assert dg.materialize([days], **partitions_of_run(first, last)).success
        assert seen == [[first + timedelta(days=i) for i in range((last - first).days + 1)]]
