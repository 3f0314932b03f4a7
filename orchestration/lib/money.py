"""Money as people read it: whole units (cents under 100), halves rounded away from zero, thousands separated.

Python's own format rounds a half to even on the float (2,362.5 printed as 2,362, 2,363.5 as 2,364): an amount
a reader checks by hand must round as they would. The float is read at its shortest repr, so 2362.4999999999995
stays 2,362."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd


def money(amount: float | None) -> str:
    """'2,363' for 2362.5, '-2,363' for -2362.5, '7.50' for 7.5, '8' for 8.0, '-0.40' for -0.4, 'n/a' for a missing
    amount (None, NaN, NA)."""
    if amount is None or pd.isna(amount):
        return "n/a"
    exact = Decimal(repr(float(amount)))
    # under 100 the cents matter (a cost of 7.50 a month printed as 8, 0.40 as 0)
    unit, places = (Decimal("0.01"), 2) if abs(exact) < 100 and exact != exact.to_integral_value() else (Decimal(1), 0)
    rounded = exact.quantize(unit, rounding=ROUND_HALF_UP)
    return f"{rounded.copy_abs() if rounded.is_zero() else rounded:,.{places}f}"  # no "-0"
