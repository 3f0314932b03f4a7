"""Money as people read it: whole units, halves rounded away from zero, thousands separated.

Python's own format rounds a half to even on the float (2,362.5 printed as 2,362, 2,363.5 as 2,364): an amount
a reader checks by hand must round as they would. The float is read at its shortest repr, so 2362.4999999999995
stays 2,362."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd


def money(amount: float | None) -> str:
    """'2,363' for 2362.5, '-2,363' for -2362.5, '0' for -0.4, 'n/a' for a missing amount (None, NaN, NA)."""
    if amount is None or pd.isna(amount):
        return "n/a"
    whole = Decimal(repr(float(amount))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{whole.copy_abs() if whole.is_zero() else whole:,.0f}"  # no "-0"
