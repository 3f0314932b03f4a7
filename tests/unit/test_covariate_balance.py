"""The pre-period covariate balance check that guards CUPED (README, Attribution statistics).

Oracles: scipy's two-sample t-tests on the raw per-unit covariate and outcome, and seeded simulations of
randomised experiments (balanced by construction) and of broken ones (the covariate shifted in one arm, or
moved by the treatment). A real trial (Project STAR) had covariate means 698.7 vs 516.7 and CUPED moved the
lift from +31.7 (p 6e-5) to +14.2 (p 0.07) for 2.6% less variance; the check sends such a row back to the
unadjusted lift and marks it not trustworthy.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from orchestration.lib.attribution import (
    AttributionSettings,
    covariate_imbalance_notes,
    covariate_imbalanced,
    experiment_results,
    model_impact,
)
from orchestration.lib.stats import CupedArmStats, covariate_balance_p_value
from tests.unit.test_attribution_engine import METRICS, experiments_of, simulate, variants_of
from tests.unit.test_attribution_honest import DECLARED, _arm_row, _binary

REVENUE = "revenue_per_user"


def _cuped_arm(y, x) -> CupedArmStats:
    y, x = np.asarray(y, float), np.asarray(x, float)
    return CupedArmStats(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


def _results(control: tuple, treatment: tuple, settings=AttributionSettings()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """experiment_stats rows of one revenue experiment from per-unit (y, x) arrays, and its results."""
    (y_c, x_c), (y_t, x_t) = control, treatment
    stats = pd.DataFrame(
        [_arm_row("e", "holdout", REVENUE, y_c, x=x_c), _arm_row("e", "treatment", REVENUE, y_t, x=x_t)]
    )
    shares = (len(y_c) / (len(y_c) + len(y_t)), len(y_t) / (len(y_c) + len(y_t)))
    return stats, experiment_results(stats, experiments_of(stats), variants_of(stats, shares), DECLARED, settings)


def _planted_imbalance(seed: int = 5, n_c: int = 1000, n_t: int = 1000, shift: float = 3.0, lift: float = 1.5):
    """A broken assignment: the heavier pre-period spenders went to treatment (x shifted by ``shift``), and the
    outcome follows x, so the unadjusted lift carries 0.7 x shift on top of the planted ``lift``."""
    rng = np.random.default_rng(seed)
    x_c, x_t = rng.gamma(2.0, 10.0, n_c), rng.gamma(2.0, 10.0, n_t) + shift
    y_c = 0.7 * x_c + rng.gamma(2.0, 4.0, n_c)
    y_t = 0.7 * x_t + rng.gamma(2.0, 4.0, n_t) + lift
    return (y_c, x_c), (y_t, x_t)


# --- the p-value ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed, n_c, n_t, shift", [(0, 40, 60, 0.0), (1, 150, 1350, 0.0), (2, 500, 500, 2.0), (3, 3000, 200, -1.0)]
)
def test_the_balance_p_value_is_scipys_pooled_t_test_on_the_raw_covariate(seed, n_c, n_t, shift):
    rng = np.random.default_rng(seed)
    x_c = (rng.random(n_c) < 0.3) * rng.lognormal(3, 1, n_c)
    x_t = (rng.random(n_t) < 0.3) * rng.lognormal(3, 1, n_t) + shift
    y_c, y_t = rng.normal(size=n_c), rng.normal(size=n_t)
    expected = st.ttest_ind(x_t, x_c, equal_var=True).pvalue
    assert covariate_balance_p_value(_cuped_arm(y_c, x_c), _cuped_arm(y_t, x_t)) == pytest.approx(expected, rel=1e-9)
    _, results = _results((y_c, x_c), (y_t, x_t))
    (row,) = results.itertuples()
    assert row.covariate_balance_p_value == pytest.approx(expected, rel=1e-9)
    assert (row.covariate_mean_control, row.covariate_mean_treatment) == pytest.approx((x_c.mean(), x_t.mean()))


def test_a_covariate_without_variance_or_an_arm_of_one_unit_is_not_tested():
    ones, zeros = _cuped_arm(np.ones(50), np.ones(50)), _cuped_arm(np.ones(40), np.zeros(40))
    assert np.isnan(covariate_balance_p_value(zeros, _cuped_arm(np.ones(60), np.zeros(60))))
    assert np.isnan(covariate_balance_p_value(_cuped_arm([1.0], [2.0]), _cuped_arm([1.0], [3.0])))
    # no variance within the arms: not a t-test (and the engine's min-events rule leaves such arms untested)
    assert np.isnan(covariate_balance_p_value(ones, zeros))


def test_six_holdout_users_none_of_whom_was_active_before_are_not_tested():
    # 6 matured holdout users with x = 0 against a treatment arm where 10% were active before: a mean over no
    # events says nothing at p < 0.001, by the rule that withholds a metric's own p-value (min_events_per_arm)
    rng = np.random.default_rng(1)
    rows = [
        _arm_row("e", "holdout", "d7_retention", _binary(3, 6), x=np.zeros(6)),
        _arm_row("e", "treatment", "d7_retention", _binary(300, 600), x=_binary(60, 600)[rng.permutation(600)]),
    ]
    stats = pd.DataFrame(rows)
    (row,) = experiment_results(
        stats, experiments_of(stats), variants_of(stats, (6 / 606, 600 / 606)), DECLARED
    ).itertuples()
    assert np.isnan(row.covariate_balance_p_value) and row.covariate_balanced is None
    assert row.trustworthy and row.untrusted_reason is None


def test_a_covariate_too_thin_to_test_is_too_thin_to_adjust_by_and_welch_decides():
    # a trial's one unit with a pre-period order (a clock-change artefact) was the only non-zero covariate: CUPED,
    # 0.08% less variance, decided with a theta of -18.6 fitted on that point and moved the value by 68.5 a unit
    rng = np.random.default_rng(4)
    y_c, y_t = rng.gamma(2.0, 20.0, 80), rng.gamma(2.0, 22.0, 170)
    x_c, x_t = np.zeros(80), np.zeros(170)
    x_t[3] = 1.0  # one event in one arm: under min_events_per_arm (5)
    _, results = _results((y_c, x_c), (y_t, x_t))
    (row,) = results.itertuples()
    assert np.isnan(row.covariate_balance_p_value) and row.cuped_variance_reduction > 0
    assert row.estimate == "welch"
    welch = st.ttest_ind(y_t, y_c, equal_var=False)
    assert row.decision_p_value == pytest.approx(welch.pvalue, rel=1e-9)
    # with events enough in both arms the covariate is tested and CUPED decides
    x_c, x_t = rng.gamma(2.0, 10.0, 80), rng.gamma(2.0, 10.0, 170)
    _, results = _results((y_c + 0.5 * x_c, x_c), (y_t + 0.5 * x_t, x_t))
    (row,) = results.itertuples()
    assert not np.isnan(row.covariate_balance_p_value) and row.estimate == "cuped"


# --- randomised experiments rarely trip it ---------------------------------------------------


def test_randomised_experiments_trip_it_at_about_its_level():
    """2,000 seeded A/A worlds of the calibration suite (10% holdout of 150 users; conversion and revenue per user
    carry covariates): at 0.001 at most 0.5% of comparisons trip, at 0.05 about 5% (a 3-SE band)."""
    stats = simulate(seed=22, effects=False)
    for level, low, high in ((0.001, 0.0, 0.005), (0.05, 0.035, 0.065)):
        results = experiment_results(
            stats,
            experiments_of(stats),
            variants_of(stats),
            METRICS,
            AttributionSettings(covariate_balance_alpha=level),
        )
        for metric, rows in results[results["metric"] != "average_order_value"].groupby("metric"):
            tripped = covariate_imbalanced(rows)
            assert rows["covariate_balance_p_value"].notna().all(), metric
            assert low <= tripped.mean() <= high, (level, metric, tripped.mean())
            # what a trip does: the unadjusted estimate, not trustworthy
            assert (rows.loc[tripped, "estimate"] == "welch").all() and not rows.loc[tripped, "trustworthy"].any()
            assert rows.loc[~tripped, "trustworthy"].all()


def test_a_skewed_covariate_in_a_small_holdout_trips_the_pooled_test_near_its_level_and_welch_ten_times_over():
    """Revenue before assignment (80% zeros, lognormal spend) in a 150-user holdout vs 1,350 treated, 20,000
    randomised worlds: the holdout that misses its few big spenders has a low mean AND a low variance, and Welch's
    per-arm variance turns that into p < 0.001 in ~1.4% of worlds. Under randomisation both arms share one
    distribution, so pooling the variance is the null's own assumption: ~0.3%."""
    rng = np.random.default_rng(7)
    worlds, n_c, n_t = 20_000, 150, 1350
    x_c = (rng.random((worlds, n_c)) < 0.2) * rng.lognormal(3, 1, (worlds, n_c))
    x_t = (rng.random((worlds, n_t)) < 0.2) * rng.lognormal(3, 1, (worlds, n_t))
    sums = [(x.sum(1), (x * x).sum(1)) for x in (x_c, x_t)]
    pooled = np.array(
        [
            covariate_balance_p_value(
                CupedArmStats(n_c, 0, 0, sums[0][0][i], sums[0][1][i], 0),
                CupedArmStats(n_t, 0, 0, sums[1][0][i], sums[1][1][i], 0),
            )
            for i in range(worlds)
        ]
    )
    welch = st.ttest_ind(x_t, x_c, axis=1, equal_var=False).pvalue
    assert (pooled < 0.001).mean() <= 0.005
    assert (welch < 0.001).mean() >= 0.008


# --- an imbalanced covariate ---------------------------------------------------------------


def test_a_planted_imbalance_trips_it_and_the_published_estimate_is_the_unadjusted_welch_lift():
    control, treatment = _planted_imbalance()
    (y_c, x_c), (y_t, x_t) = control, treatment
    stats, results = _results(control, treatment)
    (row,) = results.itertuples()
    assert row.covariate_balance_p_value == pytest.approx(st.ttest_ind(x_t, x_c).pvalue, rel=1e-9)
    assert row.covariate_balance_p_value < 0.001 and row.covariate_balanced is False
    # CUPED reduces the variance a lot here, and would have been chosen without the check
    assert row.cuped_variance_reduction > 0.5
    assert row.estimate == "welch"
    welch = st.ttest_ind(y_t, y_c, equal_var=False)
    assert row.absolute_lift == pytest.approx(y_t.mean() - y_c.mean(), abs=1e-9)
    assert row.decision_p_value == row.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    assert row.cuped_absolute_lift != pytest.approx(row.absolute_lift, abs=1.0)  # CUPED's number is still published
    assert not row.trustworthy and not row.decision_grade
    assert row.untrusted_reason.startswith("pre-period covariate imbalanced: mean ")
    assert f"t-test p = {row.covariate_balance_p_value:.2g} < covariate_balance_alpha 0.001" in row.untrusted_reason
    assert "not trustworthy" in row.decision_grade_reason
    # the money follows the published (unadjusted) lift
    costs = pd.DataFrame(
        {"model_id": ["e"], "experiment_id": ["e"], "analysis_window": ["cumulative"], "as_of_date": [row.as_of_date]}
    ).assign(model_cost=100.0)
    (value,) = model_impact(results, stats, costs, REVENUE).itertuples()
    assert value.incremental_value == pytest.approx(row.absolute_lift * len(y_t))
    assert not value.trustworthy


def test_a_covariate_the_treatment_moved_would_erase_the_lift_under_cuped_and_the_published_interval_keeps_it():
    """x is not pre-treatment (the pre-period window overlapped the exposure): treatment raised x and y alike.
    CUPED subtracts theta x the x difference, i.e. most of the effect; the unadjusted Welch CI covers the truth."""
    rng = np.random.default_rng(9)
    n, lift = 2000, 4.0
    base_c, base_t = rng.gamma(2.0, 10.0, n), rng.gamma(2.0, 10.0, n)
    x_c, x_t = base_c, base_t + lift  # the "pre-period" already shows the effect
    y_c, y_t = base_c + rng.normal(0, 3, n), base_t + lift + rng.normal(0, 3, n)
    _, results = _results((y_c, x_c), (y_t, x_t))
    (row,) = results.itertuples()
    assert row.covariate_balanced is False and row.estimate == "welch"
    assert row.absolute_ci_low <= lift <= row.absolute_ci_high
    assert abs(row.cuped_absolute_lift) < 1.0  # what the headline would have been


def test_the_level_is_a_setting_and_zero_turns_the_check_off():
    control, treatment = _planted_imbalance()
    _, off = _results(control, treatment, AttributionSettings(covariate_balance_alpha=0))
    (row,) = off.itertuples()
    assert row.estimate == "cuped" and row.trustworthy and row.covariate_balanced
    assert AttributionSettings.from_config({}).covariate_balance_alpha == 0.001
    for bad in (-0.1, 1, "0.001"):
        with pytest.raises(ValueError, match=r"attribution.covariate_balance_alpha: must be >= 0 and < 1"):
            AttributionSettings.from_config({"covariate_balance_alpha": bad}, "attribution")


def test_the_logged_note_names_the_comparison_its_means_and_the_lift_reported():
    control, treatment = _planted_imbalance()
    stats, results = _results(control, treatment)
    both = pd.concat([results, results.assign(as_of_date=results["as_of_date"] - pd.Timedelta(days=1))])
    (note,) = covariate_imbalance_notes(both)
    row = results.iloc[0]
    assert note.startswith(f"e / treatment / {REVENUE} / cumulative: 2 day(s), latest {row['as_of_date'].date()}")
    assert f"{row['covariate_mean_control']:.4g} (holdout) vs {row['covariate_mean_treatment']:.4g}" in note
    assert f"unadjusted lift {row['absolute_lift']:+.4g}, not CUPED's {row['cuped_absolute_lift']:+.4g}" in note
    assert covariate_imbalance_notes(_results(*_planted_imbalance(shift=0.0))[1]) == []
