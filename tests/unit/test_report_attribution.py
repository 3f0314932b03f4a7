"""The report's headline: significance beside every lift, ROI as net value / cost with its CI, the currency
of the project file (issue 13 items 1, 2, 4, 5)."""

import duckdb
import pytest
from statsmodels.stats.multitest import multipletests

from orchestration.lib.report import render_report
from tests.unit.test_attribution_honest import AS_OF, _fisher_by_hand
from tests.unit.test_summary_attribution import COST, warehouse  # noqa: F401 (fixture)


def test_the_headline_flags_significance_and_shows_roi_with_its_ci_in_the_configured_currency(warehouse):  # noqa: F811
    path, results, impact = warehouse
    with duckdb.connect(str(path), read_only=True) as conn:
        report = render_report(conn, AS_OF.date())
    lifts = report.summary["models"]["m"]["lift"]
    tested = results[results["decision_p_value"].notna()]
    holm = dict(zip(tested["metric"], multipletests(tested["decision_p_value"], method="holm")[1]))
    for metric, p in holm.items():
        assert lifts[metric]["significant"] == (p < 0.05)
        assert lifts[metric]["p_value_adjusted"] == pytest.approx(p, rel=1e-12)
    assert lifts["d7_retention"]["significant"] is None and "no variance" in lifts["d7_retention"]["degenerate_reason"]
    assert "not tested: holdout arm: no variance" in report.html
    # as summary says it: 0 of 300 vs 50 of 2700, Fisher's exact p summed by hand
    assert f"; Fisher&#x27;s exact p {_fisher_by_hand(0, 300, 50, 2700):.4f} (two-sided, unadjusted)" in report.html

    (row,) = impact.itertuples()
    value = report.summary["models"]["m"]["net_value"]
    assert value["currency"] == "EUR"
    assert value["roi_ci_low"] == pytest.approx(row.net_value_ci_low / COST, rel=1e-12)
    assert value["roi_ci_high"] == pytest.approx(row.net_value_ci_high / COST, rel=1e-12)
    assert "ROI = net value / cost [95% CI]" in report.html and "net value (EUR) [95% CI]" in report.html
    shown = f"{row.net_value / COST:+,.0%} [{row.net_value_ci_low / COST:+,.0%}, {row.net_value_ci_high / COST:+,.0%}]"
    assert shown in report.html
