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
