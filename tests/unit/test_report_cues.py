"""Significance cues on the money: a net value whose 95% CI crosses 0 is visibly not significant."""

import duckdb

from tests.unit.test_report import AS_OF, EVIL, build, make_warehouse, parse


def test_net_value_says_whether_its_interval_excludes_zero(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(path)) as conn:
        # churn: an interval straddling 0 on the as-of day; the other model keeps its positive one
        conn.execute(
            "UPDATE attribution.model_impact SET net_value_ci_low = -50, net_value_ci_high = 2000 "
            "WHERE model_id = 'churn' AND as_of_date = ?",
            [AS_OF],
        )
        expected = {
            m: ("positive" if lo > 0 else "negative" if hi < 0 else "includes_zero")
            for m, lo, hi in conn.execute(
                "SELECT model_id, net_value_ci_low, net_value_ci_high FROM attribution.model_impact "
                "WHERE as_of_date = ? AND analysis_window = 'cumulative'",
                [AS_OF],
            ).fetchall()
        }
    assert expected == {"churn": "includes_zero", EVIL: "positive"}  # the planted cases, checked by hand
    report = build(path)
    models = parse(report.html).summary["models"]
    assert {m: models[m]["net_value"]["net_value_sign"] for m in expected} == expected
    assert "not significant: 95% CI includes 0" in report.html and "above 0 (95% CI)" in report.html
