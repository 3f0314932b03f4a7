"""An experiment with two treatment arms (AER STAR's class_size_g1: control 'regular', arms 'small' and
'regular+aide') in the report and the summary: each arm is a row, a line and a JSON entry of its own, named
'class_size: small vs regular'; a single-arm experiment beside it looks as it always did."""

import argparse
import html
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration import cli, summary
from orchestration.defs.model_health.alerts import ALERTS_SCHEMA
from orchestration.lib.attribution import IMPACT_SCHEMA, RESULT_SCHEMA, experiment_results, model_impact
from orchestration.lib.report import render_report
from orchestration.lib.retraining import REQUEST_SCHEMA
from orchestration.lib.warehouse import ensure_table, replace_date_range
from tests.unit.test_attribution_honest import DECLARED, _arm_row, _binary
from tests.unit.test_report import parse, put, trace

DAYS = list(pd.date_range("2026-09-01", periods=5))
# experiment -> (model, control, {treatment arm: planted revenue lift})
EXPERIMENTS = {
    "class_size_g1": ("class_size", "regular", {"small": 1.5, "regular+aide": 0.2}),
    "e1": ("m1", "holdout", {"treatment": 1.0}),
}
TWO_ARMS = {"small": "class_size: small vs regular", "regular+aide": "class_size: regular+aide vs regular"}
METRICS = ["conversion", "revenue_per_user"]  # the lift figure's subplots, sorted


def _stats() -> pd.DataFrame:
    rng = np.random.default_rng(43)
    rows = []
    for i, day in enumerate(DAYS, start=1):
        for experiment_id, (_, control, arms) in EXPERIMENTS.items():
            for variant, lift in {control: 0.0, **arms}.items():
                n = 200 * i
                for metric, y in (
                    ("revenue_per_user", rng.gamma(2.0, 5.0, n) + lift),
                    ("conversion", _binary(int(n * (0.2 + lift / 20)), n)),
                ):
                    row = _arm_row(experiment_id, variant, metric, y)
                    rows.append(row | {"as_of_date": day, "is_control": variant == control})
    return pd.DataFrame(rows)


@pytest.fixture
def arms(tmp_path, monkeypatch):
    stats = _stats()
    experiments = pd.DataFrame(
        [
            {"experiment_id": e, "model_id": m, "control_variant": c, "start_date": DAYS[0]}
            for e, (m, c, _) in EXPERIMENTS.items()
        ]
    )
    variants = pd.DataFrame(
        [
            {"experiment_id": e, "variant": v, "expected_share": 1 / (1 + len(a))}
            for e, (_, c, a) in EXPERIMENTS.items()
            for v in (c, *a)
        ]
    )
    results = experiment_results(stats, experiments, variants, DECLARED)
    costs = pd.DataFrame(
        [
            {
                "model_id": m,
                "experiment_id": e,
                "analysis_window": "cumulative",
                "as_of_date": d,
                "model_cost": 50.0 * i,
            }
            for e, (m, _, _) in EXPERIMENTS.items()
            for i, d in enumerate(DAYS, start=1)
        ]
    )
    impact = model_impact(results, stats, costs, "revenue_per_user")
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        for table, schema, frame in (
            ("attribution.experiment_results", RESULT_SCHEMA, results),
            ("attribution.model_impact", IMPACT_SCHEMA, impact),
        ):
            replace_date_range(conn, table, schema, frame, "as_of_date", DAYS[0], DAYS[-1])
        ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
        ensure_table(conn, "marts.retraining_requests", REQUEST_SCHEMA)
    monkeypatch.setattr(summary, "_leading_indicators", lambda conn, as_of: [])
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    # the oracle: the published rows themselves, the decision estimate picked by each row's `estimate`
    cuped = results["estimate"] == "cuped"
    results = results.assign(lift=results["cuped_relative_lift"].where(cuped, results["relative_lift"]))
    return path, results.sort_values("as_of_date"), impact.sort_values("as_of_date")


def _of(rows: pd.DataFrame, arm: str, metric: str | None = None) -> pd.DataFrame:
    rows = rows[rows["treatment_variant"] == arm]
    return rows if metric is None else rows[rows["metric"] == metric]


def _days(rows: pd.DataFrame) -> list[str]:
    return [pd.Timestamp(d).date().isoformat() for d in rows["as_of_date"]]


def test_each_treatment_arm_has_its_row_line_and_summary_entry(arms):
    path, results, impact = arms
    assert sorted(results.loc[results["model_id"] == "class_size", "treatment_variant"].unique()) == sorted(TWO_ARMS)
    with duckdb.connect(str(path), read_only=True) as conn:
        report = render_report(conn, DAYS[-1].date())
    page = parse(report.html)
    cells = [t.strip() for t in page.texts]
    models = page.summary["models"]
    # class_size's control ('regular') is no holdout: the lift table's unit counts are control/treated
    assert "units (control/treated)" in cells and "holdout/treated" not in report.html

    lift = page.figures["lift-class-size"]
    for arm, label in TWO_ARMS.items():
        # the headline: a row in the value table and one per metric in the lift table, named with the arm
        assert cells.count(label) == 1 + len(METRICS), label
        entry = models["class_size"]["arms"][arm]
        assert entry["control_variant"] == "regular"
        last = _of(impact, arm).iloc[-1]
        assert (entry["net_value"]["value"], entry["net_value"]["treated_units"]) == (
            pytest.approx(last["net_value"]),
            last["treated_units"],
        )
        for i, metric in enumerate(METRICS):
            rows = _of(results, arm, metric)
            assert entry["lift"][metric]["relative_lift"] == pytest.approx(rows["lift"].iloc[-1])
            # its own line: one point per day, this arm's lifts only
            line = trace(lift, f"{arm} vs regular: relative lift (95% CI shaded)", i)
            assert line["x"] == _days(rows) and len(set(line["x"])) == len(DAYS)
            assert line["y"] == pytest.approx(rows["lift"].tolist())
    assert "lift" not in models["class_size"] and "net_value" not in models["class_size"]  # no arm stands for both

    # the value figure: a panel per arm (titled with it) and per single-arm model, one point per day each
    value = page.figures["value"]
    panels = [a["text"] for a in value["layout"]["annotations"] if a["text"] in (*TWO_ARMS.values(), "m1")]
    assert panels == ["class_size: regular+aide vs regular", "class_size: small vs regular", "m1"]
    expected = [_of(impact, "regular+aide"), _of(impact, "small"), _of(impact, "treatment")]
    for line, rows in zip([t for t in value["data"] if t["name"] == "net value"], expected, strict=True):
        assert line["x"] == _days(rows) and line["y"] == pytest.approx(rows["net_value"].tolist())

    # the single-arm experiment: named by its model alone, its entries where they always were
    assert cells.count("m1") == 1 + len(METRICS) + 1 and "m1: " not in report.html  # + its lift figure's heading
    assert "arms" not in models["m1"]
    assert models["m1"]["net_value"]["value"] == pytest.approx(_of(impact, "treatment")["net_value"].iloc[-1])
    single = trace(page.figures["lift-m1"], "relative lift (95% CI shaded)", 1)
    assert single["y"] == pytest.approx(_of(results, "treatment", "revenue_per_user")["lift"].tolist())


def test_the_summary_names_each_treatment_arm_and_its_control(arms, capsys):
    path, results, impact = arms
    assert cli.cmd_summary(argparse.Namespace(db=str(path))) == 0
    lines = [re.sub(r"\s+", " ", line.strip()) for line in capsys.readouterr().out.splitlines()]
    assert any("units (control/treated)" in line for line in lines)  # not every control is a holdout
    for arm, label in TWO_ARMS.items():
        for metric in METRICS:
            last = _of(results, arm, metric).iloc[-1]
            (row,) = [line for line in lines if line.startswith(f"{label} {metric} ")]
            assert f"{last['n_control']}/{last['n_treatment']}" in row
        net = _of(impact, arm).iloc[-1]
        (row,) = [line for line in lines if line.startswith(f"{label} {net['treated_units']} ")]
        assert f"{net['net_value']:,.0f} [{net['net_value_ci_low']:,.0f}, {net['net_value_ci_high']:,.0f}]" in row
    # the single-arm model's rows are named as before
    assert sum(line.startswith("m1 ") for line in lines) == len(METRICS) + 1
    assert not any(line.startswith("m1:") for line in lines)


def test_two_arms_say_their_families_and_the_cost_split_in_the_summary_and_the_report(arms, capsys):
    # a trial: two rows at p 0.039 and 0.040 read as significant (the footnote said "over the experiment's
    # metrics", each arm is its own family), and ROI +1,696% vs +795% from a cost split by treated users
    path, results, _ = arms
    latest = results[(results["as_of_date"] == DAYS[-1]) & (results["analysis_window"] == "cumulative")]
    two = latest[latest["experiment_id"] == "class_size_g1"]
    p = two["p_value_adjusted"]
    between = two[(p < 0.05) & (p >= 0.025)]  # by hand: significant at alpha, not at alpha / 2 arms
    assert cli.cmd_summary(argparse.Namespace(db=str(path))) == 0
    out = capsys.readouterr().out
    family = next(line.strip() for line in out.splitlines() if "treatment arms, each its own family" in line)
    assert family.startswith(
        "class_size_g1 has 2 treatment arms, each its own family: for an error rate over all of them, compare its "
        "adjusted p-values with alpha / 2 = 0.025"
    )
    named = [f"class_size: {r.treatment_variant} {r.metric} ({r.p_value_adjusted:.4f})" for r in between.itertuples()]
    assert family.endswith(f"significant at 0.05 only: {', '.join(named)}" if named else "0.025"), family
    assert "e1 has" not in out  # one arm: one family, nothing to say
    assert "note: class_size: its model cost is split across its 2 treatment arms by treated users" in out
    assert "note: m1: its model cost is split" not in out
    with duckdb.connect(str(path), read_only=True) as conn:
        page = html.unescape(render_report(conn, DAYS[-1].date()).html)
    assert family in page and "class_size: its model cost is split across its 2 treatment arms" in page


def test_the_rows_significant_at_alpha_but_not_at_alpha_over_the_arms_are_named():
    from orchestration.lib.attribution import arms_family_notes

    rows = pd.DataFrame(
        {
            "experiment_id": ["x"] * 4 + ["y"],
            "model_id": ["m"] * 4 + ["n"],
            "treatment_variant": ["a", "a", "b", "b", "t"],
            "metric": ["conversion", "revenue", "conversion", "revenue", "conversion"],
            "p_value_adjusted": [0.01, 0.03, 0.0249, 0.2, 0.04],
        }
    )
    # by hand: alpha 0.05 over 2 arms is 0.025; 0.03 lies between, 0.0249 passes both; y has one arm
    assert arms_family_notes(rows, 0.05) == [
        "x has 2 treatment arms, each its own family: for an error rate over all of them, compare its adjusted "
        "p-values with alpha / 2 = 0.025; significant at 0.05 only: m: a revenue (0.0300)"
    ]


REASON = "pre-period covariate imbalanced: sessions 3.1 (regular) vs 4.2 (small), t-test p = 1e-05"


def _tables(page_html: str) -> dict[str, list[dict]]:
    """Each table of the page, by its header cells joined with '|': its rows as header -> cell text."""
    out = {}
    for body in re.findall(r"<table>(.*?)</table>", page_html, re.S):
        head = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", body, re.S)]
        rows = re.findall(r"<tr>(.*?)</tr>", body.split("</thead>")[1], re.S)
        cells = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]
        out["|".join(head)] = [dict(zip(head, c, strict=True)) for c in cells]
    return out


def _table_with(tables: dict, column: str) -> list[dict]:
    (rows,) = [rows for head, rows in tables.items() if column in head.split("|")]
    return rows


def test_the_okr_scorecard_and_leading_tables_name_arms_ages_trust_and_same_day_lags(arms):
    """OKR rows (one per arm of class_size, the single-arm m1's, a KPI's), scorecard rows (one per arm and metric)
    and leading-indicator rows (lags 0 and 2) as the OKR, scorecard and leading steps write them; the control of
    class_size is no holdout."""
    path, results, _ = arms
    day, ended = DAYS[-1].date(), DAYS[-3].date()  # the m1 key result's value is of its experiment's end
    okr = dict(objective="o", description="", baseline=0.0, target=1000.0, start_date=DAYS[0].date())
    okr |= dict(deadline=day, expected_progress=1.0, on_track=True, date=day)
    with duckdb.connect(str(path)) as conn:
        put(
            conn,
            "marts.okr_progress",
            [
                okr
                | dict(key_result="kr_small", metric_kind="net_value", metric="net_value", model_id="class_size")
                | dict(treatment_variant="small", current_value=1500.0, value_as_of=day, progress=1.5)
                | dict(status="achieved", trustworthy=False, untrusted_reason=REASON)
                | dict(ci_low=-910.0, ci_high=3_900.0, significant=False),
                okr
                | dict(key_result="kr_aide", metric_kind="lift", metric="conversion", model_id="class_size")
                | dict(treatment_variant="regular+aide", current_value=0.02, value_as_of=day, progress=0.00002)
                | dict(status="missed", trustworthy=True, untrusted_reason=None)
                | dict(ci_low=0.041, ci_high=0.4, significant=False),  # excludes 0; Holm-adjusted: no
                okr
                | dict(key_result="kr_m1", metric_kind="net_value", metric="net_value", model_id="m1")
                | dict(treatment_variant="treatment", current_value=1200.0, value_as_of=ended, progress=1.2)
                | dict(status="achieved", trustworthy=True, untrusted_reason=None)
                | dict(ci_low=200.0, ci_high=2_200.0, significant=True),
                okr
                | dict(key_result="kr_kpi", metric_kind="kpi", metric="revenue", model_id=None)
                | dict(treatment_variant=None, current_value=1100.0, value_as_of=day, progress=1.1)
                | dict(status="achieved", trustworthy=None, untrusted_reason=None),
            ],
        )
        arms_of = [("class_size_g1", "class_size", "small"), ("class_size_g1", "class_size", "regular+aide")]
        put(
            conn,
            "marts.metric_scorecard",
            [
                dict(date=day, experiment_id=e, model_id=m, treatment_variant=v, metric=metric, units=100)
                for e, m, v in [*arms_of, ("e1", "m1", "treatment")]
                for metric in METRICS
            ],
        )
        put(
            conn,
            "marts.leading_lagging",
            [
                dict(as_of_date=day, model_id="m1", health_metric=h, kpi="revenue", lag_days=lag, correlation=0.8)
                | dict(n_days=30, p_value_adjusted=p, family_size=40, significant=True)
                for h, lag, p in (("label_coverage", 0, 0.001), ("precision", 2, 0.002))
            ],
        )
    with duckdb.connect(str(path), read_only=True) as conn:
        report = render_report(conn, day)
    tables = _tables(report.html)

    okrs = {r["key_result"]: r for r in _table_with(tables, "key_result")}
    # an arm of class_size's two named as the headline names it; m1's only arm and the KPI by their model alone
    assert {k: r["model"] for k, r in okrs.items()} == {
        "kr_small": TWO_ARMS["small"],
        "kr_aide": TWO_ARMS["regular+aide"],
        "kr_m1": "m1",
        "kr_kpi": "",
    }
    assert okrs["kr_m1"]["value as of"] == ended.isoformat() and okrs["kr_small"]["value as of"] == day.isoformat()
    # achieved, with the caveat of the row it read; a KPI has no attribution row to trust
    trust = "trustworthy and decision-grade"  # one column name, not the model-value table's "trustworthy"
    assert (okrs["kr_small"]["status"], okrs["kr_small"][trust]) == ("achieved", f"NO: {REASON}")
    assert [okrs[k][trust] for k in ("kr_aide", "kr_m1", "kr_kpi")] == ["yes", "yes", "n/a"]
    # achieved within noise is said beside it: the interval in the value's unit (two trials read "achieved,
    # trustworthy yes" beside a headline "not significant")
    assert [okrs[k]["significant"] for k in ("kr_small", "kr_aide", "kr_m1", "kr_kpi")] == [
        "NO: 95% CI [-910 USD, 3,900 USD] includes 0",
        "NO: not significant once the experiment's metrics are tested together (unadjusted 95% CI [+4.1%, +40.0%])",
        "yes",
        "n/a",
    ]
    summary = {r["key_result"]: r for r in parse(report.html).summary["okr_progress"]}
    assert (summary["kr_small"]["treatment_variant"], summary["kr_small"]["untrusted_reason"]) == ("small", REASON)
    assert summary["kr_m1"]["value_as_of"] == ended.isoformat()

    card = _table_with(tables, "experiment_id")
    assert [(r["model"], r["metric"]) for r in card] == [
        (label, metric) for label in (TWO_ARMS["small"], TWO_ARMS["regular+aide"], "m1") for metric in METRICS
    ]

    leads = _table_with(tables, "lag")
    assert [(r["health_metric"], r["lag"]) for r in leads] == [
        ("label_coverage", "same day (not a lead)"),
        ("precision", "2 day(s)"),
    ]

    # class_size's control is no holdout: the headline and the lift plot say control
    text = html.unescape(report.html)
    assert "against its experiment's control arm" in text and "never-exposed holdout" not in text
    assert "treatment vs control" in text and "treatment vs holdout" not in text


def test_the_summary_names_the_arm_and_metrics_a_result_is_not_trustworthy_for(arms, capsys):
    path, results, _ = arms
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE attribution.experiment_results SET trustworthy = true, untrusted_reason = NULL")
        conn.execute(
            "UPDATE attribution.experiment_results SET trustworthy = false, untrusted_reason = ? "
            "WHERE treatment_variant = 'small' AND metric = 'revenue_per_user'",
            [REASON],
        )
        conn.execute(
            "UPDATE attribution.experiment_results SET trustworthy = false, untrusted_reason = 'sample ratio mismatch' "
            "WHERE treatment_variant = 'regular+aide'"
        )
    assert cli.cmd_summary(argparse.Namespace(db=str(path))) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if "not trustworthy" in line]
    assert lines == [
        f"not trustworthy: {TWO_ARMS['regular+aide']} conversion, revenue_per_user: sample ratio mismatch",
        f"not trustworthy: {TWO_ARMS['small']} revenue_per_user: {REASON}",
    ]
