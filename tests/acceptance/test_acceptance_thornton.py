"""(b) A small A/B experiment: Thornton's (2008) incentives to learn one's HIV result (causaldata).

2,834 respondents with a known treatment and outcome, assigned over 40 days (about 70 a day, a few dozen
conversions a day): a small incentive (under a dollar) and a large one vs none, learning the result = a
completed order. Only `impact-ledger init` + `impact-ledger materialize`; each arm's lift, the sample-ratio
test over three arms and the Holm adjustment are checked against scipy / statsmodels on the raw files.
"""

from datetime import timedelta

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from tests.acceptance.datasets import THORNTON_EXPERIMENT, THORNTON_MODEL, THORNTON_SHARES

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


@pytest.fixture(scope="module")
def units(thornton_run):
    t = thornton_run.tables
    converted = set(t["orders"].loc[t["orders"]["status"] == "completed", "user_id"])
    a = t["assignments"].copy()
    a["converted"] = a["user_id"].isin(converted).astype(float)
    return a


def test_init_finds_the_experiment_and_no_model_to_monitor(thornton_run):
    cfg = thornton_run.init_config
    assert cfg["models"] == {}  # no predictions: attributed, not monitored
    assert f"'{THORNTON_MODEL}'" in thornton_run.config_path.read_text()
    assert str(cfg["partitions"]["start"]) == "2025-06-02"
    assert cfg["protected_attributes"] == []
    # nothing to say about models when the landing zone has no predictions
    assert "no models declared" not in thornton_run.materialize.stdout
    # the days without visits after the enrolment, and the last day's few results, named before any run
    t = thornton_run.tables
    last_visit, last_result = t["sessions"]["started_at"].max().date(), t["orders"]["ordered_at"].max().date()
    quiet = [str(last_visit + timedelta(days=d)) for d in range(1, (last_result - last_visit).days + 1)]
    assert f"hold back {len(quiet)} day(s) of sessions ({', '.join(quiet)})" in thornton_run.init_output
    assert f"hold back 1 day(s) of orders ({last_result})" in thornton_run.init_output


def test_small_days_pass_the_gates(thornton_run):
    thornton_run.require_success()
    gates = thornton_run.query("SELECT * FROM quality.gate_results")
    failed = gates[~gates["passed"].astype(bool)]
    assert failed.empty, f"gates failed on ordinary small days:\n{failed.to_string()}"
    # every day from the first assignment to the last result learnt, the last ones without sessions
    t = thornton_run.tables
    days = (t["orders"]["ordered_at"].max().normalize() - t["assignments"]["assigned_at"].min().normalize()).days + 1
    assert t["sessions"]["started_at"].max().date() < t["orders"]["ordered_at"].max().date()
    assert gates.loc[gates["suite"].str.contains("orders"), "date"].nunique() == days


def _latest_cumulative(run):
    return run.query(
        "SELECT * FROM attribution.experiment_results WHERE experiment_id = ? AND analysis_window = 'cumulative' "
        "AND as_of_date = (SELECT max(as_of_date) FROM attribution.experiment_results)",
        [THORNTON_EXPERIMENT],
    )


@pytest.mark.parametrize("arm", ["small_incentive", "large_incentive"])
def test_each_arms_cumulative_conversion_lift_matches_scipy_and_statsmodels(thornton_run, units, arm):
    thornton_run.require_success()
    rows = _latest_cumulative(thornton_run)
    assert sorted(rows.loc[rows["metric"] == "conversion", "treatment_variant"]) == [
        "large_incentive",
        "small_incentive",
    ]
    res = rows[(rows["metric"] == "conversion") & (rows["treatment_variant"] == arm)].iloc[0]
    # results go on while outcomes land: to the last result learnt, days after the last visit
    assert str(res["as_of_date"])[:10] == str(thornton_run.tables["orders"]["ordered_at"].max().date())
    control = units.loc[units["variant"] == "no_incentive", "converted"].to_numpy()
    treated = units.loc[units["variant"] == arm, "converted"].to_numpy()
    assert (res["n_control"], res["n_treatment"]) == (len(control), len(treated))
    assert res["mean_control"] == pytest.approx(control.mean(), abs=1e-12)
    assert res["mean_treatment"] == pytest.approx(treated.mean(), abs=1e-12)
    assert res["absolute_lift"] == pytest.approx(treated.mean() - control.mean(), abs=1e-12)
    welch = stats.ttest_ind(treated, control, equal_var=False)
    assert res["p_value"] == pytest.approx(welch.pvalue, rel=1e-9, abs=1e-300)
    low, high = CompareMeans(DescrStatsW(treated), DescrStatsW(control)).tconfint_diff(alpha=0.05, usevar="unequal")
    assert (res["absolute_ci_low"], res["absolute_ci_high"]) == pytest.approx((low, high), abs=1e-9)
    # relative lift: delta-method SE; Fieller's CI with the same Welch variances and t quantile, the ratios R with
    # (mt - R mc)^2 <= q^2 (vt / n_t + R^2 vc / n_c), minus 1
    mc, mt, vc, vt = control.mean(), treated.mean(), control.var(ddof=1), treated.var(ddof=1)
    se = np.sqrt(vt / (len(treated) * mc**2) + mt**2 * vc / (len(control) * mc**4))
    q = stats.t.ppf(0.975, welch.df)
    assert res["relative_lift"] == pytest.approx(mt / mc - 1, abs=1e-12)
    assert res["relative_se"] == pytest.approx(se, rel=1e-9)
    quad, half, const = mc**2 - q**2 * vc / len(control), mt * mc, mt**2 - q**2 * vt / len(treated)
    root = np.sqrt(half**2 - quad * const)
    assert (res["relative_ci_low"], res["relative_ci_high"]) == pytest.approx(
        ((half - root) / quad - 1, (half + root) / quad - 1), abs=1e-9
    )
    relative_excludes_0 = res["relative_ci_low"] > 0 or res["relative_ci_high"] < 0
    assert relative_excludes_0 == (res["p_value"] < 0.05) == (res["absolute_ci_low"] > 0 or res["absolute_ci_high"] < 0)
    # sample ratio: chi-square of the three arms' sizes against the design's shares
    sizes = units["variant"].value_counts()
    srm = stats.chisquare([sizes[a] for a in THORNTON_SHARES], [s * len(units) for s in THORNTON_SHARES.values()])
    assert res["srm_p_value"] == pytest.approx(srm.pvalue, rel=1e-9)
    assert bool(res["trustworthy"]), res["untrusted_reason"]
    # the published finding: even a small incentive more than doubles the share who learn their result
    assert res["relative_lift"] > 1 and res["p_value"] < 1e-12
    # Holm over the arm's tested metrics (README: across the metrics of an arm, window and day)
    tested = rows[(rows["treatment_variant"] == arm) & rows["decision_p_value"].notna()]
    assert len(tested) >= 2
    holm = multipletests(tested["decision_p_value"], method="holm")[1]
    assert tested["p_value_adjusted"].to_numpy() == pytest.approx(holm, rel=1e-9)
