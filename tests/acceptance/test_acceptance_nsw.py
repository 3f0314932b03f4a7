"""(d) An A/B experiment on revenue with a pre-period: the NSW job-training experiment (causaldata).

445 men randomised to training or not (LaLonde 1986; Dehejia & Wahba's sample), assigned over 20 days; each
one's 1978 earnings are the outcome (a completed order after assignment; zero for most) and his 1975
earnings the pre-period covariate (an order days before assignment). Only `impact-ledger init` +
`impact-ledger materialize`; revenue per user and its CUPED adjustment are checked against scipy,
statsmodels and a hand computation on the raw files, and against the experiment's published effect.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from tests.acceptance.datasets import NSW_EXPERIMENT, NSW_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


@pytest.fixture(scope="module")
def units(nsw_run):
    """Each assigned man with y = revenue after assignment (1978 earnings) and x = revenue in the 14 days before
    it (1975 earnings; the project's default pre_period_days), from the written files."""
    t = nsw_run.tables
    rows = t["orders"].merge(t["assignments"][["user_id", "assigned_at"]], on="user_id")
    after = rows["ordered_at"] >= rows["assigned_at"]
    before = ~after & (rows["ordered_at"] >= rows["assigned_at"] - pd.Timedelta(days=14))
    a = t["assignments"].copy()
    a["y"] = a["user_id"].map(rows[after].groupby("user_id")["revenue"].sum()).fillna(0.0)
    a["x"] = a["user_id"].map(rows[before].groupby("user_id")["revenue"].sum()).fillna(0.0)
    return a


def _latest(run, metric: str) -> pd.Series:
    return run.query(
        "SELECT * FROM attribution.experiment_results WHERE experiment_id = ? AND metric = ? "
        "AND analysis_window = 'cumulative' ORDER BY as_of_date DESC LIMIT 1",
        [NSW_EXPERIMENT, metric],
    ).iloc[0]


def _welch(treated: np.ndarray, control: np.ndarray) -> tuple[float, tuple[float, float]]:
    """scipy's Welch p-value and statsmodels' unequal-variance 95% interval of the difference in means."""
    p = stats.ttest_ind(treated, control, equal_var=False).pvalue
    ci = CompareMeans(DescrStatsW(treated), DescrStatsW(control)).tconfint_diff(alpha=0.05, usevar="unequal")
    return p, ci


def test_init_finds_the_experiment_and_proposes_race(nsw_run):
    cfg = nsw_run.init_config
    assert cfg["models"] == {}  # no predictions: attributed, not monitored
    assert f"'{NSW_MODEL}'" in nsw_run.config_path.read_text()
    assert str(cfg["partitions"]["start"]) == str(nsw_run.tables["orders"]["ordered_at"].min().date())
    assert cfg["protected_attributes"] == ["race"]  # a protected name; age and educ only listed


def test_every_day_passes_the_gates(nsw_run):
    nsw_run.require_success()
    gates = nsw_run.query("SELECT * FROM quality.gate_results")
    failed = gates[~gates["passed"].astype(bool)]
    assert failed.empty, f"gates failed on ordinary small days:\n{failed.to_string()}"


def test_revenue_per_user_and_its_cuped_adjustment_match_scipy_statsmodels_and_a_hand_computation(nsw_run, units):
    nsw_run.require_success()
    res = _latest(nsw_run, "revenue_per_user")
    assert str(res["as_of_date"])[:10] == str(units["assigned_at"].max().date())  # every outcome is in
    control, treated = (units[units["variant"] == v] for v in ("control", "training"))
    assert (res["n_control"], res["n_treatment"]) == (len(control), len(treated))
    assert res["mean_control"] == pytest.approx(control["y"].mean(), abs=1e-9)
    assert res["mean_treatment"] == pytest.approx(treated["y"].mean(), abs=1e-9)
    assert res["absolute_lift"] == pytest.approx(treated["y"].mean() - control["y"].mean(), abs=1e-9)
    p, ci = _welch(treated["y"].to_numpy(), control["y"].to_numpy())
    assert res["p_value"] == pytest.approx(p, rel=1e-9)
    assert (res["absolute_ci_low"], res["absolute_ci_high"]) == pytest.approx(ci, abs=1e-6)
    # CUPED by hand: theta = cov(y, x) / var(x) over both arms, then Welch on y - theta (x - mean x)
    theta = np.cov(units["y"], units["x"])[0, 1] / units["x"].var()
    adjusted = units["y"] - theta * (units["x"] - units["x"].mean())
    adj_control, adj_treated = (adjusted[units["variant"] == v].to_numpy() for v in ("control", "training"))
    adj_p, adj_ci = _welch(adj_treated, adj_control)
    assert res["cuped_theta"] == pytest.approx(theta, rel=1e-9)
    assert res["cuped_absolute_lift"] == pytest.approx(adj_treated.mean() - adj_control.mean(), abs=1e-6)
    assert res["cuped_p_value"] == pytest.approx(adj_p, rel=1e-9)
    assert (res["cuped_absolute_ci_low"], res["cuped_absolute_ci_high"]) == pytest.approx(adj_ci, abs=1e-6)
    # the variance of the lift removed: one less the squared ratio of the two intervals' widths (same t quantile
    # up to the degrees of freedom, so compared loosely)
    shrink = 1 - ((adj_ci[1] - adj_ci[0]) / (ci[1] - ci[0])) ** 2
    assert res["cuped_variance_reduction"] == pytest.approx(shrink, abs=1e-3)
    assert bool(res["trustworthy"]), res["untrusted_reason"]


def test_the_published_effect_of_training_on_earnings(nsw_run):
    """Dehejia & Wahba's experimental benchmark: training raised 1978 earnings by about $1,794."""
    nsw_run.require_success()
    raw = nsw_run.tables["nsw"]
    published = raw.loc[raw["treat"] == 1, "re78"].mean() - raw.loc[raw["treat"] == 0, "re78"].mean()
    assert published == pytest.approx(1794.34, abs=0.01)
    res = _latest(nsw_run, "revenue_per_user")
    assert res["absolute_lift"] == pytest.approx(published, abs=0.01)  # the written amounts are rounded to cents
    assert res["p_value"] < 0.01 and res["absolute_ci_low"] > 0


def test_employment_lift_is_a_proportion_with_welchs_interval(nsw_run, units):
    """Conversion: a man with any earnings (an order) after assignment."""
    nsw_run.require_success()
    res = _latest(nsw_run, "conversion")
    employed = (units["y"] > 0).astype(float)
    control, treated = (employed[units["variant"] == v].to_numpy() for v in ("control", "training"))
    assert res["absolute_lift"] == pytest.approx(treated.mean() - control.mean(), abs=1e-12)
    p, ci = _welch(treated, control)
    assert res["p_value"] == pytest.approx(p, rel=1e-9)
    assert (res["absolute_ci_low"], res["absolute_ci_high"]) == pytest.approx(ci, abs=1e-9)
