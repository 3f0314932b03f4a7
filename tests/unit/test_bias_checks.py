"""The daily fairness checks (orchestration/defs/bias/checks.py): which window each model's check judges."""

from datetime import timedelta

import pandas as pd

from orchestration.defs.bias.checks import BIAS_CHECKS, bias_check_results, judged_window_ends
from orchestration.lib.bias import bias_verdicts, group_rates, windows_by_day
from orchestration.lib.project_config import load_config
from tests.unit.test_bias import DAYS, bias_daily, make_world


def _results(rows: pd.DataFrame, last) -> dict:
    config = load_config()
    thresholds = config.bias.model_dump()
    days = pd.date_range(DAYS[0], last).date
    rates, verdicts = windows_by_day(rows, days, thresholds)
    results = bias_check_results(rates, verdicts, judged_window_ends(rows, last), last, config, asset=None)
    return {r.check_name: r for r in results}


def test_a_backfill_ending_after_a_model_stopped_judges_its_last_window_not_an_empty_one():
    # a backfill ending 18 days after the model's last prediction day judged the empty window ending on the run's
    # last day ("no fairness rows"): passed, while every window holding its data failed
    rows = bias_daily(*make_world())
    [(name, model)] = [(n, m) for n, m in BIAS_CHECKS.items() if m == "recommender"]
    config = load_config()
    window = rows[pd.to_datetime(rows["date"]) > pd.Timestamp(DAYS[-1] - timedelta(days=config.bias.window_days))]
    oracle = bias_verdicts(group_rates(window), config.bias.model_dump())  # the window ending on its last day
    assert not oracle["passed"].all()  # the planted under-scored age band fails

    stopped = _results(rows, DAYS[-1] + timedelta(days=18))[name]
    assert stopped.passed is False
    assert stopped.description.startswith(f"its last day with rows, {DAYS[-1]}: ")
    assert stopped.metadata["failing_verdicts"].value == int((~oracle["passed"]).sum())
    flagged = oracle.loc[~oracle["passed"], "flagged_groups_disparate_impact"].iloc[0]
    assert f"disadvantaged: {', '.join(flagged)}" in stopped.description  # the groups, not their letters

    live = _results(rows, DAYS[-1])[name]  # the run ends on its last day: that window, as before
    assert live.passed is False and not live.description.startswith("its last day")
    assert live.metadata["window"].value == f"{DAYS[-1] - timedelta(days=config.bias.window_days - 1)} .. {DAYS[-1]}"


def test_a_daily_run_without_late_labels_judges_a_stopped_model_on_its_stored_last_window(tmp_path):
    # a trial's stopped model: its check failed on each day late labels came (the run recomputed its windows) and
    # passed on an empty window on every other day; now each day's check reads the verdicts stored for its last day
    import duckdb

    from orchestration.defs.bias.assets import _stored_last_windows

    rows = bias_daily(*make_world())
    [(name, model)] = [(n, m) for n, m in BIAS_CHECKS.items() if m == "recommender"]
    config = load_config()
    rates, verdicts = windows_by_day(rows, pd.date_range(DAYS[0], DAYS[-1]).date, config.bias.model_dump())
    today = DAYS[-1] + timedelta(days=40)  # no rows since long before it
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        for table, frame in (("bias_daily", rows), ("bias_group_rates", rates), ("bias_verdicts", verdicts)):
            conn.register("f", frame)
            conn.execute(f"CREATE TABLE marts.{table} AS SELECT * FROM f")
            conn.unregister("f")
        assert _stored_last_windows(conn, today, {model})["ends"] == {}  # a model the run judged: left alone
        earlier = _stored_last_windows(conn, today, set())
    empty = rates.iloc[:0], verdicts.iloc[:0]  # what the day's run computed: nothing of the stopped model
    before = {r.check_name: r for r in bias_check_results(*empty, {}, today, config, asset=None)}[name]
    assert before.passed  # the empty window (the old behaviour)
    judged = bias_check_results(earlier["rates"], earlier["verdicts"], earlier["ends"], today, config, asset=None)
    stopped = {r.check_name: r for r in judged}[name]
    expected = _results(rows, today)[name]  # the backfill's judgement of the same window (the test above)
    assert stopped.passed is False and stopped.description == expected.description
    assert stopped.metadata["failing_verdicts"] == expected.metadata["failing_verdicts"]
