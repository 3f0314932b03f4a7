"""Money rounds as a reader checking it by hand rounds: halves away from zero, whatever the float's binary value."""

import numpy as np
import pandas as pd
import pytest

from orchestration.lib.money import money


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (2362.5, "2,363"),  # Python's format gives "2,362" (half to even)
        (2363.5, "2,364"),
        (-2362.5, "-2,363"),
        (0.5, "0.50"),  # under 100: the cents
        (7.5, "7.50"),
        (99.995, "100.00"),
        (8.0, "8"),
        (-0.4, "-0.40"),
        (-0.004, "0.00"),  # not "-0.00"
        (1234567.49, "1,234,567"),
        (2362.4999999999995, "2,362"),  # below the half, though it prints as 2362.5 at 15 digits
        (np.float64(1e6 + 0.5), "1,000,001"),
        (np.int64(-7), "-7"),
        (None, "n/a"),
        (float("nan"), "n/a"),
        (pd.NA, "n/a"),
    ],
)
def test_money_rounds_halves_away_from_zero_with_thousands_separators(amount, text):
    assert money(amount) == text
