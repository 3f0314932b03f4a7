"""When the Spark run's session lists a raw table's folder again (REFRESH) instead of dropping and creating it in
the Derby metastore: only for the same folder whose new files keep the columns it was registered with."""

import pandas as pd

from orchestration.lib.spark_raw import Registered, _file_columns, _files_signature, _same_columns


def _day(folder, day, frame):
    path = folder / f"_partition_date={day}"
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / "part-0.parquet")


def test_a_new_day_with_the_same_columns_is_a_relisting_and_a_new_column_or_folder_is_not(tmp_path):
    folder = tmp_path / "raw" / "orders"
    _day(folder, "2026-01-01", pd.DataFrame({"order_id": ["o1"], "revenue": [1.5]}))
    first = _files_signature(folder)
    registered = Registered(first, _file_columns(first[1][-1][0]))
    assert [name for name, _ in registered.columns] == ["order_id", "revenue"]

    _day(folder, "2026-01-02", pd.DataFrame({"order_id": ["o2"], "revenue": [2.0]}))
    assert _same_columns(registered, _files_signature(folder))  # a day landed: REFRESH

    _day(folder, "2026-01-03", pd.DataFrame({"order_id": ["o3"], "revenue": [2.0], "coupon": ["c"]}))
    assert not _same_columns(registered, _files_signature(folder))  # a new column: registered anew

    elsewhere = tmp_path / "other" / "raw" / "orders"  # another spark_dir's table of the same name
    _day(elsewhere, "2026-01-01", pd.DataFrame({"order_id": ["o1"], "revenue": [1.5]}))
    assert not _same_columns(registered, _files_signature(elsewhere))
