"""Landing-zone files as a user lays them out: one folder per table, one Parquet file per day (or one file)."""

from pathlib import Path

import pandas as pd


def write_parquet(source: Path, table: str, frame: pd.DataFrame, day=None) -> None:
    """``source/<table>/<table>_<day>.parquet`` (a dated file), or ``<table>.parquet`` without a day."""
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / (f"{table}_{day}.parquet" if day else f"{table}.parquet"), index=False)
