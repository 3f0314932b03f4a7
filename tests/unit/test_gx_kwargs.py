"""gx_kwargs: GX's kwargs readers with the configuration built once per call give what GX's own methods give.

The oracle is GX itself: its original methods, on every expectation of every suite of the project (each level's
expectations, and the pair expectation the rows level is judged by), and a gate's verdict with and without them.
"""

from datetime import date

import pandas as pd
import pytest
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from orchestration.lib import gx_kwargs
from orchestration.lib.quality_gate import LEVELS, RowRule, load_suite, suite_names, validate_frame

RUNTIME_CONFIGURATIONS = (None, {}, {"result_format": {"result_format": "COMPLETE", "partial_unexpected_count": 5}})


def _suite_expectations() -> list:
    specs = [spec for name in suite_names() for key in LEVELS for spec in load_suite(name).get(key) or []]
    # the rows level's verdict: one pair expectation per row expectation (quality_gate._gx_rows_level)
    specs.append(
        {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "a", "column_B": "b"}}
    )
    return [
        ExpectationConfiguration(type=s["type"], kwargs=s["kwargs"], meta=s.get("meta") or {}).to_domain_obj()
        for s in specs
    ]


EXPECTATIONS = _suite_expectations()


def test_installed_on_the_pinned_gx():
    assert gx_kwargs.install()
    for name, method in gx_kwargs.REPLACEMENTS.items():
        assert getattr(Expectation, name) is method and gx_kwargs.original(name) is not method


@pytest.mark.parametrize("expectation", EXPECTATIONS, ids=lambda e: e.expectation_type)
def test_each_reader_returns_what_gxs_own_returns(expectation):
    gx_kwargs.install()
    for name in ("_get_domain_kwargs", "_get_success_kwargs"):
        assert gx_kwargs.REPLACEMENTS[name](expectation) == gx_kwargs.original(name)(expectation), name
    for runtime in RUNTIME_CONFIGURATIONS:
        ours = gx_kwargs.REPLACEMENTS["_get_runtime_kwargs"](expectation, runtime)
        assert ours == gx_kwargs.original("_get_runtime_kwargs")(expectation, runtime)
    keys = [*expectation.domain_keys, *expectation.success_keys, *expectation.runtime_keys, "not_a_field"]
    for key in keys:
        for default in (None, "fallback"):
            ours = gx_kwargs.REPLACEMENTS["_get_success_kwarg"](expectation, key, default)
            assert ours == gx_kwargs.original("_get_success_kwarg")(expectation, key, default), key


def test_a_gate_gives_the_same_verdict_with_gxs_own_readers(monkeypatch):
    day = date(2026, 9, 1)
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(60)] + ["o0"],  # a duplicated key
            "user_id": "u1",
            "status": ["completed"] * 50 + ["lost"] * 11,  # 11 values outside the set: above 1% and 10
            "revenue": [10.0] * 59 + [-1.0, None],
            "user_known": True,
            "in_partition_day": True,
            "_day": pd.Timestamp(day),
        }
    )
    suite, rule = load_suite("raw_orders"), RowRule(0.01, 10)

    def outcomes():
        result = validate_frame(frame, suite, row_rule=rule)
        return result.failed_days, [
            (o.name, o.success, o.unexpected_count, o.sample_unexpected, o.failed_days) for o in result.outcomes
        ]

    ours = outcomes()
    monkeypatch.setattr(gx_kwargs, "install", lambda: False)
    for name in gx_kwargs.REPLACEMENTS:
        monkeypatch.setattr(Expectation, name, gx_kwargs.original(name))
    gxs = outcomes()
    assert ours == gxs
    assert ours[0] == [day]  # the planted breaks fail the day (checked by hand above)
