"""A real data set on both engines, as a user runs it (`init`, then one `materialize`), tables compared.

A script, not a test (minutes on Spark: not in `make test`, whose Spark parity runs a generated world):

    .venv/bin/python -m tests.acceptance.engines_on_real_data [thornton|fair|rossi|nsw] [FOLDER]

The project file is init's, unreviewed (the same on both engines, which is what is compared).
Each engine gets its own folder (landing zone, project file, warehouse, Spark files) under FOLDER (default: a
temporary one); the marts, intermediate and attribution tables are compared as tests/spark/test_engine_parity.py
compares them (counts and strings exactly, floats within 1e-9 relative). Exits 1 on a failed run or a difference.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.acceptance import runner
from tests.acceptance.datasets import write_fair, write_nsw, write_rossi, write_thornton
from tests.spark.test_engine_parity import _tables, assert_same_table


WRITERS = {"thornton": write_thornton, "fair": write_fair, "rossi": write_rossi, "nsw": write_nsw}


def materialize_on(engine: str, home: Path, data: str) -> runner.Run:
    home.mkdir(parents=True, exist_ok=True)
    run = runner.init(home, home / "landing", WRITERS[data](home / "landing"))
    started = time.time()
    runner.materialize(run, {"IMPACT_LEDGER_ENGINE": engine, "IMPACT_LEDGER_SPARK_DIR": str(home / "spark")})
    print(f"{engine}: materialize exited {run.materialize.returncode} after {time.time() - started:.0f} s", flush=True)
    return run


def main(data: str, folder: Path) -> int:
    runs = {engine: materialize_on(engine, folder / engine, data) for engine in ("duckdb", "spark")}
    for engine, run in runs.items():
        if run.materialize.returncode != 0:
            print(f"{engine} failed; its log: {run.home / 'materialize.log'}")
            return 1
    duck, spark = _tables(runs["duckdb"].db), _tables(runs["spark"].db)
    differ = sorted(set(duck) ^ set(spark))
    for name in sorted(set(duck) & set(spark)):
        try:
            assert_same_table(name, duck[name], spark[name])
        except AssertionError as err:
            differ.append(name)
            print(f"{name} differs: {str(err)[:500]}")
    print(f"{len(duck)} tables compared, {len(differ)} differ{': ' + ', '.join(differ) if differ else ''}")
    return 1 if differ else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    data = args.pop(0) if args and args[0] in WRITERS else "thornton"
    sys.exit(main(data, Path(args[0]) if args else Path(tempfile.mkdtemp(prefix=f"engines_{data}_"))))
