"""Write gbstats_cases.json: GrowthBook's gbstats 0.8.0 results on fixed sufficient statistics.

tests/unit/test_stats_gbstats.py checks orchestration.lib.stats against the
JSON, so the project's own test run does not need gbstats (it pins numpy 1.26
and pandas 1.5, which clash with the project's). Regenerate only when the cases
change, in a throwaway venv:

    python3.11 -m venv /tmp/gbstats-venv
    /tmp/gbstats-venv/bin/pip install gbstats==0.8.0
    /tmp/gbstats-venv/bin/python tests/oracles/gbstats_oracle.py   # from the repo root

Inputs are drawn from a seeded generator, but the JSON stores the resulting
sums themselves, so the fixture, not the generator, is the contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from gbstats import __version__ as gbstats_version
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

OUT = Path(__file__).with_name("gbstats_cases.json")
rng = np.random.default_rng(20261030)


def f(x) -> float:
    return float(x)


# --- sufficient statistics from small raw samples (our field names) ---------


def mean_arm(y) -> dict:
    y = np.asarray(y, dtype=float)
    return {"n": len(y), "total": f(y.sum()), "total_sq": f((y**2).sum())}


def ratio_arm(num, den) -> dict:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return {
        "n": len(num),
        "num_sum": f(num.sum()),
        "num_sum_sq": f((num**2).sum()),
        "den_sum": f(den.sum()),
        "den_sum_sq": f((den**2).sum()),
        "num_den_sum": f((num * den).sum()),
    }


def cuped_arm(y, x) -> dict:
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    return {
        "n": len(y),
        "y_sum": f(y.sum()),
        "y_sum_sq": f((y**2).sum()),
        "x_sum": f(x.sum()),
        "x_sum_sq": f((x**2).sum()),
        "xy_sum": f((x * y).sum()),
    }


# --- the same numbers as gbstats statistics ----------------------------------


def gb_stat(kind: str, a: dict):
    if kind == "mean":
        return SampleMeanStatistic(n=a["n"], sum=a["total"], sum_squares=a["total_sq"])
    if kind == "proportion":  # gbstats's own binomial statistic: variance p(1-p)
        return ProportionStatistic(n=a["n"], sum=a["total"])
    if kind == "ratio":
        return RatioStatistic(
            n=a["n"],
            m_statistic=SampleMeanStatistic(n=a["n"], sum=a["num_sum"], sum_squares=a["num_sum_sq"]),
            d_statistic=SampleMeanStatistic(n=a["n"], sum=a["den_sum"], sum_squares=a["den_sum_sq"]),
            m_d_sum_of_products=a["num_den_sum"],
        )
    if kind == "cuped":
        return RegressionAdjustedStatistic(
            n=a["n"],
            post_statistic=SampleMeanStatistic(n=a["n"], sum=a["y_sum"], sum_squares=a["y_sum_sq"]),
            pre_statistic=SampleMeanStatistic(n=a["n"], sum=a["x_sum"], sum_squares=a["x_sum_sq"]),
            post_pre_sum_of_products=a["xy_sum"],
            theta=0,  # the test object sets the pooled theta
        )
    raise ValueError(kind)


def run(kind: str, control: dict, treatment: dict, alpha: float, tau: float) -> dict:
    out: dict = {}
    for design in ("fixed", "sequential"):
        for difference in ("absolute", "relative"):
            a, b = gb_stat(kind, control), gb_stat(kind, treatment)
            if design == "fixed":
                test = TwoSidedTTest(a, b, FrequentistConfig(alpha=alpha, difference_type=difference))
            else:
                config = SequentialConfig(alpha=alpha, difference_type=difference, sequential_tuning_parameter=tau)
                test = SequentialTwoSidedTTest(a, b, config)
            r = test.compute_result()
            out[f"{design}_{difference}"] = {
                "expected": f(r.expected),
                "ci_low": f(r.ci[0]),
                "ci_high": f(r.ci[1]),
                "p_value": f(r.p_value),
                "stddev": f(r.uplift.stddev),
                "error_message": r.error_message,
            }
            if not r.error_message:
                out["dof"] = f(test.dof)
            if kind == "cuped":
                out["theta"] = f(getattr(test.stat_a, "theta", 0.0))
    return out


def case(name, kind, control, treatment, alpha=0.05, tau=5000.0) -> dict:
    c = {"name": name, "kind": kind, "alpha": alpha, "tau": tau, "control": control, "treatment": treatment}
    c["gbstats"] = run(kind, control, treatment, alpha, tau)
    if kind == "mean" and all(arm["total"] == arm["total_sq"] for arm in (control, treatment)):
        # binary metric: also gbstats's ProportionStatistic (biased variance p(1-p))
        c["gbstats_proportion"] = run("proportion", control, treatment, alpha, tau)
    return c


def cases() -> list[dict]:
    out = []
    # means: skewed revenue with a 10% holdout; tiny unequal-variance arms; counts
    out.append(
        case(
            "revenue_per_user_holdout",
            "mean",
            mean_arm(rng.lognormal(2.0, 1.1, 1200)),
            mean_arm(rng.lognormal(2.1, 1.1, 10800)),
        )
    )
    out.append(
        case(
            "small_unequal_variance",
            "mean",
            mean_arm(rng.normal(10, 2, 25)),
            mean_arm(rng.normal(11, 5, 40)),
            alpha=0.1,
            tau=1000.0,
        )
    )
    out.append(
        case(
            "orders_per_user",
            "mean",
            mean_arm(rng.poisson(1.3, 5000)),
            mean_arm(rng.poisson(1.34, 5000)),
            tau=20000.0,
        )
    )
    # proportions (sum of squares = sum)
    out.append(
        case(
            "conversion_holdout",
            "mean",
            mean_arm(rng.binomial(1, 0.37, 1822)),
            mean_arm(rng.binomial(1, 0.42, 17001)),
        )
    )
    out.append(
        case(
            "conversion_small",
            "mean",
            mean_arm(rng.binomial(1, 0.2, 80)),
            mean_arm(rng.binomial(1, 0.3, 95)),
            alpha=0.1,
            tau=500.0,
        )
    )
    # ratios: average order value, refund rate
    orders_c, orders_t = rng.poisson(1.2, 3000) + 1, rng.poisson(1.25, 27000) + 1
    out.append(
        case(
            "average_order_value",
            "ratio",
            ratio_arm(orders_c * rng.gamma(4.0, 6.0, 3000), orders_c),
            ratio_arm(orders_t * rng.gamma(4.0, 6.1, 27000), orders_t),
        )
    )
    orders_c, orders_t = rng.poisson(2.0, 800) + 1, rng.poisson(2.0, 900) + 1
    out.append(
        case(
            "refund_rate",
            "ratio",
            ratio_arm(rng.binomial(orders_c, 0.06), orders_c),
            ratio_arm(rng.binomial(orders_t, 0.05), orders_t),
            alpha=0.1,
            tau=2000.0,
        )
    )
    # CUPED: the pre-period value of the same metric as covariate
    for name, n_c, n_t, slope, lift, alpha, tau in (
        ("cuped_revenue_holdout", 2000, 18000, 0.7, 0.4, 0.05, 5000.0),
        ("cuped_small", 50, 60, 0.5, 0.8, 0.1, 1000.0),
    ):
        arms = []
        for n, effect in ((n_c, 0.0), (n_t, lift)):
            x = rng.gamma(3.0, 5.0, n)
            y = slope * x + rng.gamma(2.0, 4.0, n) + effect
            arms.append(cuped_arm(y, x))
        out.append(case(name, "cuped", *arms, alpha=alpha, tau=tau))
    xb_c = rng.binomial(1, 0.3, 4000)
    xb_t = rng.binomial(1, 0.3, 4000)
    yb_c = np.where(xb_c == 1, rng.binomial(1, 0.6, 4000), rng.binomial(1, 0.2, 4000))
    yb_t = np.where(xb_t == 1, rng.binomial(1, 0.65, 4000), rng.binomial(1, 0.22, 4000))
    out.append(case("cuped_binary", "cuped", cuped_arm(yb_c, xb_c), cuped_arm(yb_t, xb_t)))
    # degenerate: control mean zero, gbstats returns its uninformative default
    out.append(case("zero_control_mean", "mean", mean_arm(np.zeros(50)), mean_arm(rng.binomial(1, 0.1, 50))))
    return out


def srm_cases() -> list[dict]:
    out = []
    for counts, weights in (
        ([1822, 17001], [0.1, 0.9]),
        ([1950, 18050], [0.1, 0.9]),
        ([5000, 5105], [1, 1]),
        ([3300, 3310, 3390], [1 / 3, 1 / 3, 1 / 3]),
        ([1000, 2100, 6900], [0.1, 0.2, 0.7]),
    ):
        out.append({"counts": counts, "weights": weights, "p_value": f(check_srm(counts, weights))})
    return out


def main() -> None:
    payload = {"gbstats_version": gbstats_version, "cases": cases(), "srm": srm_cases()}
    # repr-exact floats: the test compares to 1e-9
    OUT.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
    print(f"wrote {OUT} ({len(payload['cases'])} cases, {len(payload['srm'])} srm)")


if __name__ == "__main__":
    main()
