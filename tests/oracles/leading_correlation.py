"""What marts.leading_lagging holds for one pair of change series, computed in pandas, numpy, statsmodels and
scipy (the oracle of the leading/lagging tests): the correlation partial on weekday and its Fisher-z p-value."""

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.tsa.stattools import acf


@dataclass(frozen=True)
class Correlation:
    n_days: int  # pairs with both changes known
    controls: int  # weekday dummies partialled out: distinct weekdays among the pairs - 1 (0 for plain Pearson)
    correlation: float
    n_effective: float  # Bartlett's, from the lag-1 autocorrelations (statsmodels' acf) of the correlated series
    p_value: float  # two-sided, Fisher's z on sqrt(n_effective - 3 - controls); nan when that is not positive or
    # the pairs are fewer than 3 x (controls + 1)
    # correlation, n_effective and p_value are nan without a correlation (fewer than 2 pairs, a constant series)


def correlate(x, y, days: list[date], by_weekday: bool = True) -> Correlation:
    """The correlation of changes ``x`` (health metric) and ``y`` (KPI), given on ``days`` (the KPI's days,
    consecutive), dropping pairs where either is missing. ``by_weekday``: each change less its weekday's mean
    over the pairs first (the partial correlation given weekday dummies); False: plain Pearson."""
    pairs = pd.DataFrame(
        {"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float), "weekday": [d.weekday() for d in days]}
    ).dropna()
    values = pairs[["x", "y"]]
    controls = 0
    if by_weekday:
        values = values - pairs.groupby("weekday")[["x", "y"]].transform("mean")
        controls = pairs["weekday"].nunique() - 1
    if len(pairs) < 2 or not (values["x"].var() > 0 and values["y"].var() > 0):
        # too few pairs, or a series constant (within each weekday): no correlation
        return Correlation(len(pairs), controls, np.nan, np.nan, np.nan)
    r = np.corrcoef(values["x"], values["y"])[0, 1]
    rx, ry = acf(values["x"], nlags=1)[1], acf(values["y"], nlags=1)[1]
    n_effective = len(pairs) / max(1.0, 1 + 2 * rx * ry)
    dof = n_effective - 3 - controls
    # and three pairs a weekday on average: two demean one spike into two high-leverage points
    enough = dof > 0 and len(pairs) >= 3 * (controls + 1)
    p = 2 * stats.norm.sf(abs(np.arctanh(r)) * np.sqrt(dof)) if enough else np.nan
    return Correlation(len(pairs), controls, r, n_effective, p)
