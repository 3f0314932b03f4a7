"""Closed-form experiment statistics over per-arm sufficient statistics.

The warehouse reduces every arm to (n, sum, sum of squares); everything here is
arithmetic on those few numbers, so it costs the same for 1,000 or 100 million
units. Pure Python + scipy, no Dagster.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats as st

NAN = float("nan")


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm for one metric."""

    n: int
    total: float  # sum of the per-unit metric
    total_sq: float  # sum of squares of the per-unit metric

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else NAN

    @property
    def variance(self) -> float:
        """Unbiased sample variance (ddof = 1)."""
        if self.n < 2:
            return NAN
        return max(self.total_sq - self.total**2 / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True)
class LiftResult:
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    absolute_lift: float
    absolute_se: float
    absolute_ci_low: float
    absolute_ci_high: float
    relative_lift: float
    relative_se: float
    relative_ci_low: float
    relative_ci_high: float
    degrees_of_freedom: float
    p_value: float

    def as_dict(self) -> dict:
        return asdict(self)


def welch_df(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    """Welch–Satterthwaite degrees of freedom."""
    a, b = var_c / n_c, var_t / n_t
    denominator = a**2 / (n_c - 1) + b**2 / (n_t - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else NAN


def compare_means(control: ArmStats, treatment: ArmStats, alpha: float = 0.05) -> LiftResult:
    """Treatment vs control: Welch t-test, CI of the absolute lift, delta-method CI of the relative lift.

    The relative lift (mean_t / mean_c - 1) uses the first-order delta method
    Var(r) = var_t / (n_t mean_c^2) + mean_t^2 var_c / (n_c mean_c^4), with the
    same Welch t quantile as the absolute lift.
    """
    n_c, n_t = control.n, treatment.n
    m_c, m_t = control.mean, treatment.mean
    lift = m_t - m_c
    if n_c < 2 or n_t < 2:
        return LiftResult(n_c, n_t, m_c, m_t, lift, *[NAN] * 3, NAN if not m_c else m_t / m_c - 1, *[NAN] * 5)
    v_c, v_t = control.variance, treatment.variance
    se = math.sqrt(v_c / n_c + v_t / n_t)
    df = welch_df(v_c, n_c, v_t, n_t)
    if se > 0 and not math.isnan(df):
        q = st.t.ppf(1 - alpha / 2, df)
        p = 2 * st.t.sf(abs(lift) / se, df)
    else:  # no variance at all: nothing to test
        q, p = NAN, NAN
    if m_c:
        rel = m_t / m_c - 1
        rel_se = math.sqrt(v_t / (n_t * m_c**2) + m_t**2 * v_c / (n_c * m_c**4))
    else:
        rel = rel_se = NAN
    return LiftResult(
        n_control=n_c,
        n_treatment=n_t,
        mean_control=m_c,
        mean_treatment=m_t,
        absolute_lift=lift,
        absolute_se=se,
        absolute_ci_low=lift - q * se,
        absolute_ci_high=lift + q * se,
        relative_lift=rel,
        relative_se=rel_se,
        relative_ci_low=rel - q * rel_se,
        relative_ci_high=rel + q * rel_se,
        degrees_of_freedom=df,
        p_value=p,
    )
