"""The daily HTML report on a small hand-made warehouse: every figure holds the right numbers, nothing is
fetched from the network, text is escaped, missing tables become notes, and (if Chromium is installed) it renders."""

import html
import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser

import duckdb
import pandas as pd
import pytest

from orchestration.lib.alerts import load_alert_config
from orchestration.lib.project_config import load_config
from orchestration.lib.report import ReportDataError, latest_report_date, render_report, write_report

AS_OF = date(2026, 3, 10)
LATER = AS_OF + timedelta(days=1)  # rows after the as-of day must not show up
DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(11)]  # 03-01 .. 03-11
EVIL = 'rec<script>alert("x")</script>'  # a model name that must be escaped
MODELS = [EVIL, "churn"]
UNTRUSTED = "sample ratio mismatch (p=1e-6)"  # why churn's results are not trustworthy
CONFIG = load_alert_config()


def put(conn, table: str, rows: list[dict]) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    frame = pd.DataFrame(rows)
    conn.register("_rows", frame)
    casts = ", ".join(
        f'CAST("{c}" AS DATE) AS "{c}"' if isinstance(frame[c].iloc[0], date) else f'"{c}"' for c in frame.columns
    )
    conn.execute(f"CREATE TABLE {table} AS SELECT {casts} FROM _rows")
    conn.unregister("_rows")


def lift_rows(model: str) -> list[dict]:
    rows = []
    for i, day in enumerate(DAYS[2:], start=1):  # results from 03-03 on
        for metric, estimate, guardrail in (
            ("revenue_per_user", "cuped", False),
            ("refund_rate", "delta_method_ratio", True),
        ):
            raw, cuped = 0.01 * i, 0.02 * i
            if day == LATER:
                raw = cuped = 9.99
            rows.append(
                dict(
                    experiment_id=f"exp_{model}",
                    model_id=model,
                    metric=metric,
                    analysis_window="cumulative",
                    as_of_date=day,
                    estimate=estimate,
                    is_guardrail=guardrail,
                    guardrail_verdict="pass" if guardrail else None,
                    n_control=100 * i,
                    n_treatment=900 * i,
                    p_value_adjusted=0.5,
                    trustworthy=model != "churn",
                    untrusted_reason=UNTRUSTED if model == "churn" else None,
                    relative_lift=raw,
                    relative_ci_low=raw - 0.05,
                    relative_ci_high=raw + 0.05,
                    cuped_relative_lift=cuped if estimate == "cuped" else None,
                    cuped_relative_ci_low=cuped - 0.03 if estimate == "cuped" else None,
                    cuped_relative_ci_high=cuped + 0.03 if estimate == "cuped" else None,
                )
            )
            # a 'day' window row must not leak into the cumulative plots
            rows.append({**rows[-1], "analysis_window": "day", "relative_lift": -5.0, "cuped_relative_lift": -5.0})
    return rows


def impact_rows(model: str) -> list[dict]:
    rows = []
    for i, day in enumerate(DAYS[2:], start=1):
        incremental, cost = 1000.0 * i, 100.0 * i
        rows.append(
            dict(
                model_id=model,
                experiment_id=f"exp_{model}",
                analysis_window="cumulative",
                as_of_date=day,
                value_metric="revenue_per_user",
                treated_units=900 * i,
                incremental_value=incremental,
                incremental_value_ci_low=incremental - 500,
                incremental_value_ci_high=incremental + 500,
                model_cost=cost,
                net_value=incremental - cost,
                net_value_ci_low=incremental - cost - 500,
                net_value_ci_high=incremental - cost + 500,
                roi=(incremental - cost) / cost,
                trustworthy=True,
                untrusted_reason=None,
            )
        )
    return rows


def bias_rows() -> list[dict]:
    # two days of the window, counts split in halves: rates are ratios of the window totals
    groups = {"young": (1000, 500, 800), "old": (1000, 300, 800), "tiny": (50, 10, 20)}
    # an intersection with long labels (the browser test checks they are shown whole)
    crossed = {"female x 25-34": (1000, 450, 800), "male x 25-34": (1000, 500, 800), "female x 65+": (400, 150, 300)}
    rows = []
    for day in (AS_OF - timedelta(days=1), AS_OF):
        for attribute, group, (predictions, positives, labelled) in [
            *[("age_band", g, c) for g, c in groups.items()],
            *[("gender_x_age_band", g, c) for g, c in crossed.items()],
        ]:
            half = lambda x: x // 2  # noqa: E731
            rows.append(
                dict(
                    date=day,
                    model_id=EVIL,
                    attribute=attribute,
                    group_value=group,
                    predictions=half(predictions),
                    positives=half(positives),
                    labelled=half(labelled),
                    labelled_positives=half(labelled) // 2,
                    true_positives=half(labelled) // 4,
                    false_positives=half(labelled) // 4,
                    false_negatives=half(labelled) // 4,
                    true_negatives=half(labelled) - 3 * (half(labelled) // 4),
                    score_sum=0.4 * half(labelled),
                    label_sum=half(labelled) // 2,
                    population_users=1000,
                    population_total=3000,
                )
            )
    # outside the trailing window (before it, and after the as-of day): "old" selected every time
    window = int(CONFIG.bias["window_days"])
    for day in (AS_OF - timedelta(days=window), LATER):
        rows.append({**rows[1], "date": day, "predictions": 5000, "positives": 5000})
    return rows


def publish_bias(conn, rows: list[dict]) -> None:
    """marts.bias_group_rates / bias_verdicts as the bias asset stores them: the windows ending on AS_OF and LATER."""
    from orchestration.lib.bias import GROUP_RATES_SCHEMA, VERDICTS_SCHEMA, window_tables

    frame = pd.DataFrame(rows).assign(date=lambda f: pd.to_datetime(f["date"]))
    tables = [window_tables(frame, day, CONFIG.bias) for day in (AS_OF, LATER)]
    for name, schema, part in (
        ("marts.bias_group_rates", GROUP_RATES_SCHEMA, 0),
        ("marts.bias_verdicts", VERDICTS_SCHEMA, 1),
    ):
        stored = pd.concat([t[part] for t in tables], ignore_index=True)
        conn.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {k}' for c, k in schema.items())})")
        conn.execute(f"INSERT INTO {name} SELECT {', '.join(schema)} FROM stored")


def okr_rows() -> list[dict]:
    """Two key results: a net value read from a trustworthy row, and a lift read from churn's results (not
    trustworthy up to the as-of day, trustworthy on the day after it)."""
    common = dict(start_date=DAYS[0], deadline=date(2026, 6, 30), expected_progress=0.1)
    rows = []
    for day, value, lift in ((DAYS[8], 500.0, 0.01), (AS_OF, 7200.0, 0.03), (LATER, 9999.0, 0.09)):
        rows.append(
            dict(date=day, objective="Grow revenue", key_result="kr_value", description="net value 10k")
            | dict(metric_kind="net_value", metric="net_value", model_id=EVIL, baseline=0.0, target=10000.0)
            | dict(current_value=value, progress=value / 10000, on_track=value / 10000 >= 0.1)
            | dict(status="on track" if value >= 1000 else "behind", trustworthy=True, untrusted_reason=None)
            | common
        )
        rows.append(
            dict(date=day, objective="Keep users", key_result="kr_lift", description="revenue per user +5%")
            | dict(metric_kind="lift", metric="revenue_per_user", model_id="churn", baseline=0.0, target=0.05)
            | dict(current_value=lift, progress=lift / 0.05, on_track=lift / 0.05 >= 0.1, status="on track")
            | dict(trustworthy=day == LATER, untrusted_reason=None if day == LATER else UNTRUSTED)
            | common
        )
    return rows


def make_warehouse(path, optional: bool = False):
    with duckdb.connect(str(path)) as conn:
        put(conn, "attribution.experiment_results", [r for m in MODELS for r in lift_rows(m)])
        put(conn, "attribution.model_impact", [r for m in MODELS for r in impact_rows(m)])
        put(
            conn,
            "marts.model_health_daily",
            [
                dict(
                    date=day,
                    model_id=m,
                    model_version="v1",
                    labelled=100 if i == 3 else 1000,
                    precision=0.6,
                    recall=0.5,
                    expected_calibration_error=0.12 if (m == EVIL and i >= 7) else 0.05,
                )
                for m in MODELS
                for i, day in enumerate(DAYS)
            ],
        )
        put(
            conn,
            "marts.feature_drift_daily",
            [
                dict(
                    date=day,
                    model_id=m,
                    model_version="v1",
                    feature=f,
                    psi=(0.4 if (m == EVIL and f == "f2" and i >= 7) else psi),
                )
                for m in MODELS
                for i, day in enumerate(DAYS)
                for f, psi in (("f1", 0.05), ("f2", 0.1))
            ],
        )
        put(
            conn,
            "marts.alerts",
            [
                dict(
                    date=day,
                    model_id=EVIL,
                    model_version="v1",
                    metric=metric,
                    subject=subject,
                    value=value,
                    threshold=threshold,
                    rule="> x",
                    first_detected_on=day,
                    last_evaluated_on=day,
                )
                for day in DAYS[7:]
                for metric, subject, value, threshold in (
                    ("expected_calibration_error", "", 0.12, 0.08),
                    ("psi", "f2", 0.4, 0.2),
                )
            ],
        )
        put(
            conn,
            "marts.retraining_requests",
            [dict(date=AS_OF, model_id=EVIL, reason="drift 3 days", status="requested")],
        )
        put(conn, "marts.bias_daily", bias_rows())
        publish_bias(conn, bias_rows())
        put(
            conn,
            "marts.kpi_daily",
            [
                dict(
                    date=day,
                    active_users=1000 + i,
                    conversion_rate=0.05,
                    revenue_per_active_user=3.0,
                    average_order_value=40.0,
                    refund_rate=0.02,
                )
                for i, day in enumerate(DAYS)
            ],
        )
        put(
            conn,
            "raw_quarantine.orders",
            [
                dict(order_id=str(k), _partition_date=day, _reason=reason)
                for k, (day, reason) in enumerate(
                    [(DAYS[1], "duplicate key")] * 3 + [(DAYS[4], "bad type")] + [(LATER, "late")] * 2
                )
            ],
        )
        conn.execute("CREATE TABLE raw_quarantine.users (user_id VARCHAR, _partition_date DATE, _reason VARCHAR)")
        put(
            conn,
            "quality.gate_results",
            [
                dict(
                    date=day,
                    suite=f"raw_{t}",
                    table_name=t,
                    passed=not (t == "orders" and day == DAYS[4]),
                    failed_expectations="[]",
                    rows_validated=10,
                )
                for day in DAYS
                for t in ("orders", "users")
            ],
        )
        if optional:
            put(conn, "marts.okr_progress", okr_rows())
            put(
                conn,
                "marts.metric_scorecard",
                [
                    dict(
                        date=AS_OF,
                        experiment_id=f"exp_{EVIL}",
                        model_id=EVIL,
                        metric="revenue_per_user",
                        metric_type="mean",
                        is_guardrail=False,
                        attributable=True,
                        units=1000,
                        units_per_day=100.0,
                        mde_relative=0.15,
                        maturity_days=0,
                        balanced_by_guardrail="refund_rate",
                        key_result="kr_value",
                        target_relative_effect=0.05,
                        days_needed=200.0,
                        days_to_deadline=112,
                        detectable_by_deadline=False,
                        warning="needs 200 days",
                    )
                ],
            )
            put(
                conn,
                "marts.leading_lagging",
                [
                    dict(
                        as_of_date=AS_OF,
                        model_id=EVIL,
                        health_metric="expected_calibration_error",
                        kpi="revenue_per_active_user",
                        lag_days=lag,
                        correlation=corr,
                        n_days=30,
                        is_best_lag=best,
                        p_value_adjusted=p,
                        family_size=30,
                        significant=p < 0.01,
                    )
                    for lag, corr, best, p in ((2, -0.71, True, 0.004), (3, -0.4, False, 0.6))
                ],
            )
    return path


class PageParser(HTMLParser):
    """Collects tag attributes, the figure blocks and the summary block."""

    def __init__(self):
        super().__init__()
        self.attrs, self.figures, self.summary, self.texts = [], {}, None, []
        self._block = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        if tag == "script" and attrs.get("type") == "application/json":
            self._block = attrs.get("data-plot") or attrs.get("id")

    def handle_data(self, data):
        if self._block == "report-summary":
            self.summary = json.loads(data)
        elif self._block:
            self.figures[self._block] = json.loads(data)
        else:
            self.texts.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._block = None


def parse(html_text: str) -> PageParser:
    p = PageParser()
    p.feed(html_text)
    return p


def numbers(values) -> list[float]:
    return [v for v in values or [] if isinstance(v, (int, float)) and not isinstance(v, bool)]


def trace(figure: dict, name: str, nth: int = 0) -> dict:
    return [t for t in figure["data"] if t.get("name") == name][nth]


@pytest.fixture
def warehouse(tmp_path):
    return make_warehouse(tmp_path / "w.duckdb")


def build(db, as_of=AS_OF):
    with duckdb.connect(str(db), read_only=True) as conn:
        return render_report(conn, as_of)


def test_every_plot_has_data_and_the_page_is_self_contained(warehouse):
    report = build(warehouse)
    page = parse(report.html)
    assert page.summary["plots"] == report.plots and set(page.figures) == set(report.plots)
    assert {"value", "kpis", "quarantine"} <= set(report.plots)
    assert sum(name.startswith("lift-") for name in report.plots) == 2
    assert sum(name.startswith("health-") for name in report.plots) == 2
    for name, figure in page.figures.items():
        # y values, or x values of horizontal bars
        assert any(numbers(t.get("x" if t.get("orientation") == "h" else "y")) for t in figure["data"]), name
        # plain JSON numbers, not plotly's base64 typed arrays, so anyone can read them
        assert not re.search(r'"bdata"', json.dumps(figure)), name
        assert any(f'id="plot-{name}"' in f'id="{a.get("id")}"' for _, a in page.attrs), name
    # nothing is loaded from elsewhere: no src at all, links only to anchors in the page
    for tag, attrs in page.attrs:
        assert "src" not in attrs, (tag, attrs)
        assert attrs.get("href", "#").startswith("#"), (tag, attrs)
    assert "cdn" not in " ".join(str(a) for _, a in page.attrs).lower()
    assert report.html.count("Plotly.newPlot") == 1 and len(report.html) < 6_000_000


def test_text_is_escaped(warehouse):
    report = build(warehouse)
    assert "<script>alert" not in report.html
    assert html_escaped(EVIL) in report.html  # headings and tables
    page = parse(report.html)
    assert EVIL in page.summary["models"]  # JSON blocks decode back to the original text
    assert sum(tag == "script" for tag, _ in page.attrs) == 2 + 1 + len(
        page.figures
    )  # plotly.js, renderer, summary, figures


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_lift_value_and_headline_numbers(warehouse):
    report = build(warehouse)
    page = parse(report.html)
    n = (AS_OF - DAYS[2]).days + 1  # results from 03-03 to the as-of day, index i = 1..n
    # the value's basis names its metric in the headline and the value plot's caption (a trial's claims cost read
    # "revenue-per-user lift" and "lift x treated users")
    assert "Value = revenue_per_user lift x treated users, net of" in report.html
    assert "Cumulative incremental value (revenue_per_user lift x treated users) and net value" in report.html
    lift = page.figures[[p for p in report.plots if p.startswith("lift-rec")][0]]
    # CUPED where the metric has it (0.02 i), the plain estimate otherwise (0.01 i); nothing after the as-of day
    rpu = trace(lift, "relative lift (95% CI shaded)", 1)  # subplots are sorted: refund_rate, revenue_per_user
    assert rpu["x"] == [d.isoformat() for d in DAYS[2:10]]
    assert rpu["y"] == pytest.approx([0.02 * i for i in range(1, n + 1)])
    refund = trace(lift, "relative lift (95% CI shaded)", 0)
    assert refund["y"] == pytest.approx([0.01 * i for i in range(1, n + 1)])
    band_high = [t for t in lift["data"] if t["name"] == "lift 95% CI high"][1]
    assert band_high["y"] == pytest.approx([0.02 * i + 0.03 for i in range(1, n + 1)])
    zero_lines = [s for s in lift["layout"]["shapes"] if s.get("y0") == 0 and s.get("y1") == 0]
    assert len(zero_lines) == 2

    summary = page.summary["models"]
    rpu_now = summary[EVIL]["lift"]["revenue_per_user"]
    assert [rpu_now[k] for k in ("relative_lift", "ci_low", "ci_high")] == pytest.approx(
        [0.02 * n, 0.02 * n - 0.03, 0.02 * n + 0.03]
    )
    assert (rpu_now["estimate"], rpu_now["as_of_date"], rpu_now["n_treatment"]) == ("cuped", AS_OF.isoformat(), 900 * n)
    assert summary[EVIL]["lift"]["refund_rate"]["relative_lift"] == pytest.approx(0.01 * n)
    assert summary["churn"]["lift"]["revenue_per_user"]["untrusted_reason"].startswith("sample ratio mismatch")
    net = summary["churn"]["net_value"]
    assert net["as_of_date"] == AS_OF.isoformat()
    assert net["value"] == pytest.approx(900.0 * n) and net["ci_low"] == pytest.approx(900.0 * n - 500)
    assert "NO: sample ratio mismatch" in report.html
    assert "units (holdout/treated)" in report.html  # a table without control_variant: holdouts, as before
    assert "against its never-exposed holdout" in report.html and "treatment vs holdout" in report.html

    value = page.figures["value"]
    net_lines = [t for t in value["data"] if t["name"] == "net value"]
    assert [t["y"] for t in net_lines] == [pytest.approx([900.0 * i for i in range(1, n + 1)])] * 2


def test_a_metric_never_estimated_is_named_not_drawn_as_an_empty_panel(warehouse):
    # a refund rate of 0 in every unit has no variance: no lift, and an empty panel with no word on why
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "UPDATE attribution.experiment_results SET relative_lift = NULL, cuped_relative_lift = NULL "
            "WHERE metric = 'refund_rate'"
        )
    report = build(warehouse)
    lift = parse(report.html).figures[[p for p in report.plots if p.startswith("lift-rec")][0]]
    titles = [a["text"] for a in lift["layout"]["annotations"]]
    assert "refund_rate" not in titles and "revenue_per_user" in titles
    assert "Not drawn, no lift estimated: refund_rate (the headline table says why)." in report.html


def test_health_trends_thresholds_and_alerts(warehouse):
    report = build(warehouse)
    page = parse(report.html)
    health = page.figures[[p for p in report.plots if p.startswith("health-rec")][0]]
    psi = trace(health, "max PSI")
    assert psi["y"] == pytest.approx([0.1] * 7 + [0.4] * 3)  # max over features per day, up to the as-of day
    precision = trace(health, "precision")
    # the day with fewer labelled predictions than the alert rules need is left out
    assert precision["y"][3] is None and numbers(precision["y"]) == [0.6] * 9
    thresholds = sorted(s["y0"] for s in health["layout"]["shapes"] if s.get("line", {}).get("dash") == "dash")
    # EVIL is not declared in the project file: no retraining floor line, only the alert thresholds
    assert CONFIG.floor(EVIL, "min_precision") is None
    assert thresholds == sorted(
        [CONFIG.rule("psi", EVIL)["above"], CONFIG.rule("expected_calibration_error", EVIL)["above"]]
    )
    assert trace(health, "ECE alert")["x"] == [d.isoformat() for d in DAYS[7:10]]
    # a value above a line is no alert by itself: each line says what else its alert needs (a trial's ECE curve
    # stood above 0.08 on most days with eight alerts, unexplained)
    labels = {a["text"] for a in health["layout"]["annotations"]}
    assert f"ECE alert where Hosmer-Lemeshow p < {CONFIG.rule('expected_calibration_error', EVIL)['alpha']:g}" in labels
    assert f"PSI alert where chi-square p < {CONFIG.rule('psi', EVIL)['alpha']:g}" in labels

    first = page.summary["models"][EVIL]["first_alert"]
    assert first == {"expected_calibration_error": DAYS[7].isoformat(), "psi": DAYS[7].isoformat()}
    assert page.summary["models"][EVIL]["alerts_on_as_of"] == 2
    psi_alert = [a for a in page.summary["alerts"] if a["metric"] == "psi"][0]
    assert (psi_alert["days"], psi_alert["last_date"], psi_alert["active"]) == (3, AS_OF.isoformat(), True)
    assert "drift 3 days" in report.html  # retraining request listed


def test_bias_relative_selection_rates_and_four_fifths_band(warehouse):
    report = build(warehouse)
    page = parse(report.html)
    bias = page.figures[[p for p in report.plots if p.startswith("bias-")][0]]
    bars = bias["data"][0]
    # horizontal bars: the group labels on the y axis in full (alphabetical from the top)
    assert bars["orientation"] == "h" and bars["y"] == ["young", "tiny", "old"]
    # window totals: young 500/1000, old 300/1000, tiny 10/50; best eligible group is young (tiny has < min_labelled)
    assert bars["x"] == pytest.approx([1.0, 0.2 / 0.5, 0.3 / 0.5])
    floor = CONFIG.bias["disparate_impact_min"]
    assert bars["marker"]["color"][2] != bars["marker"]["color"][0]  # old is flagged
    band = [s for s in bias["layout"]["shapes"] if s["type"] == "rect"][0]
    assert (band["x0"], band["x1"]) == (0, floor)
    assert {"model_id": EVIL, "attribute": "age_band"} in page.summary["fairness_failures"]
    assert page.summary["models"][EVIL]["disparate_impact_relative"]["age_band"]["old"] == pytest.approx(0.6)


def test_disparate_impacts_groups_are_greyed_by_the_verdicts_own_minimum_of_predictions(warehouse):
    # a trial set bias.min_predictions 50 under min_labelled 100: the verdict judged groups of 50-99 predictions,
    # the report greyed them and said "fewer than 100 predictions"
    from orchestration.lib import report_figures as rf

    def tiny_colour() -> tuple[str, str]:
        report = build(warehouse)
        bars = parse(report.html).figures[[p for p in report.plots if p.startswith("bias-")][0]]["data"][0]
        return report.html, bars["marker"]["color"][bars["y"].index("tiny")]

    html, colour = tiny_colour()
    assert colour == rf.EXCLUDED  # 50 predictions, under the fixture's minimum
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE marts.bias_verdicts SET min_predictions = 40")
    html, colour = tiny_colour()
    assert colour != rf.EXCLUDED and "Groups with fewer than 40 predictions are grey" in re.sub(r"<[^>]+>", "", html)


def test_bias_bars_and_table_show_wilson_intervals(warehouse):
    from statsmodels.stats.proportion import proportion_confint

    report = build(warehouse)
    page = parse(report.html)
    bars = page.figures[[p for p in report.plots if p.startswith("bias-")][0]]["data"][0]
    # window totals (old, tiny, young): 300/1000, 10/50, 500/1000; bars are relative to young's 0.5, and another
    # group's interval spans both intervals (its low end over young's high end, its high end over young's low end)
    wilson = [proportion_confint(k, n, alpha=0.05, method="wilson") for k, n in ((300, 1000), (10, 50), (500, 1000))]
    relative = [0.6, 0.4, 1.0]
    (young_low, young_high) = wilson[2]
    bounds = [(w[0] / young_high, w[1] / young_low) for w in wilson[:2]] + [(young_low / 0.5, young_high / 0.5)]
    # the bars run young, tiny, old (top to bottom)
    order = [2, 1, 0]
    assert bars["error_x"]["array"] == pytest.approx([bounds[k][1] - relative[k] for k in order], rel=1e-9)
    assert bars["error_x"]["arrayminus"] == pytest.approx([relative[k] - bounds[k][0] for k in order], rel=1e-9)
    assert page.summary["models"][EVIL]["disparate_impact_relative_95"]["age_band"]["tiny"] == pytest.approx(
        list(bounds[1])
    )
    # the table of intervals: the tiny group's selection rate with its (wide) interval, marked excluded
    row = re.search(r"<tr><td>age_band</td><td>tiny</td>(.*?)</tr>", report.html).group(1)
    # with its own denominator: the selection rate's is every prediction of the group (50), not its labelled rows
    assert f"0.200 [{wilson[1][0]:.3f}, {wilson[1][1]:.3f}] (n 50)" in row
    assert row.endswith("<td>every verdict (&lt; min predictions)</td>")  # 50 predictions: under disparate impact's 100
    assert "Wilson 95%" in report.html


def test_a_group_too_small_in_labels_is_one_row_excluded_from_the_label_based_verdicts_only(warehouse):
    # a trial's table listed each such group twice: its selection rate with "excluded: no" (enough predictions)
    # and its label-based rates with "excluded: yes", each row half blank
    with duckdb.connect(str(warehouse)) as conn:  # tiny's 50 predictions now count for disparate impact
        conn.execute("UPDATE marts.bias_verdicts SET min_predictions = 40")
        labelled, minimum, excluded = conn.execute(
            "SELECT r.labelled, v.min_labelled, r.excluded FROM marts.bias_group_rates r JOIN marts.bias_verdicts v USING "
            "(date, model_id, attribute) WHERE r.group_value = 'tiny' ORDER BY r.date DESC LIMIT 1"
        ).fetchone()
    assert labelled < minimum and excluded  # the mart says excluded: the table says from what
    html = build(warehouse).html
    rows = re.findall(r"<tr><td>age_band</td><td>tiny</td>(.*?)</tr>", html)
    assert len(rows) == 1 and "n/a" not in rows[0].split("</td>")[1]  # its selection rate beside its other rates
    assert rows[0].endswith("<td>the label-based verdicts (&lt; min labelled); in disparate impact</td>")
    old = re.search(r"<tr><td>age_band</td><td>old</td>(.*?)</tr>", html).group(1)
    assert old.endswith("<td>none</td>")


def test_quarantine_counts_and_gates(warehouse):
    report = build(warehouse)
    page = parse(report.html)
    bars = page.figures["quarantine"]["data"]
    assert [(t["name"], t["x"], t["y"]) for t in bars] == [
        ("orders", [DAYS[1].isoformat(), DAYS[4].isoformat()], [3, 1])
    ]
    assert page.summary["quarantine_rows"] == {"orders": 4, "users": 0}
    assert page.summary["gates"] == {
        "suites_on_as_of": 2,
        "failed_on_as_of": [],
        "failed_days": 1,
        "warnings_on_as_of": {},  # results written before the warnings column
    }


def test_optional_sections_absent_are_notes_and_present_are_shown(warehouse, tmp_path):
    report = build(warehouse)
    page = parse(report.html)
    for anchor, table in (
        ("okr-progress", "marts.okr_progress"),
        ("metric-scorecard", "marts.metric_scorecard"),
        ("leading-vs-lagging-indicators", "marts.leading_lagging"),
    ):
        assert page.summary["sections"][anchor] == "absent"
        assert f"{table} is not in this database" in report.html

    full = build(make_warehouse(tmp_path / "full.duckdb", optional=True))
    page = parse(full.html)
    assert all(
        page.summary["sections"][a] == "present"
        for a in ("okr-progress", "metric-scorecard", "leading-vs-lagging-indicators")
    )
    okr = page.figures["okr-progress"]
    assert trace(okr, "progress")["y"] == pytest.approx([0.72])  # the as-of day's row, not the later one
    assert trace(okr, "expected by now (linear pace)")["y"] == pytest.approx([0.1, 0.1])
    assert page.summary["okr_progress"][0]["current_value"] == 7200.0
    assert "needs 200 days" in full.html and "revenue_per_active_user" in full.html
    # the net-value key result is money in the project's currency, thousands separated (not 1e+04)
    currency = load_config().currency
    assert f"<td>10,000 {currency}</td>" in full.html and f"<td>7,200 {currency}</td>" in full.html
    assert "e+0" not in re.sub(r"<script.*?</script>", "", full.html, flags=re.S)


def test_a_day_without_data_is_a_clear_error_and_write_is_atomic(warehouse, tmp_path):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert latest_report_date(conn) == LATER
        with pytest.raises(
            ReportDataError, match=r"nothing to report for 2025-01-01.*latest day with data is 2026-03-11"
        ):
            render_report(conn, date(2025, 1, 1))
        path = write_report(conn, AS_OF, tmp_path / "out")
    assert path == tmp_path / "out" / "impact_ledger_2026-03-10.html"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert parse(path.read_text()).summary["as_of"] == "2026-03-10"


def _health_days(db, labels_as_of):
    """A warehouse whose model health has the 5 days up to AS_OF, row i's labels known by ``labels_as_of(i)``."""
    with duckdb.connect(str(db)) as conn:
        put(
            conn,
            "marts.model_health_daily",
            [
                dict(
                    date=AS_OF - timedelta(days=i),
                    model_id="risk",
                    model_version="v1",
                    predictions=10,
                    labelled=10,
                    precision=0.5,
                    recall=0.5,
                    expected_calibration_error=0.05,
                    labels_as_of=labels_as_of(i),
                )
                for i in range(5)
            ],
        )
    return db


def test_a_day_whose_labels_landed_is_reported_after_the_model_stopped_predicting(tmp_path):
    # months-late labels: the runs after the last prediction day wrote no report while they were what made
    # precision and recall known (labels_as_of: the day of the last label a row counts)
    landed = AS_OF + timedelta(days=40)
    db = _health_days(tmp_path / "late_labels.duckdb", lambda i: landed - timedelta(days=i % 2))
    with duckdb.connect(str(db), read_only=True) as conn:
        assert latest_report_date(conn) == landed
        assert parse(render_report(conn, landed).html).summary["as_of"] == landed.isoformat()
        with pytest.raises(ReportDataError, match=f"latest day with data is {landed}"):
            render_report(conn, landed - timedelta(days=2))  # nothing landed that day


def test_a_day_only_stamped_by_the_label_lookback_is_not_a_day_labels_landed(tmp_path):
    # a recent row's labels_as_of is its day + label_lookback_days (or the run's day): a weekday-only model got a
    # report for every weekend and holiday, "labels landed" there though none had
    friday = AS_OF
    db = _health_days(tmp_path / "weekdays.duckdb", lambda i: friday - timedelta(days=i) + timedelta(days=7))
    with duckdb.connect(str(db), read_only=True) as conn:
        assert latest_report_date(conn) == friday  # its last prediction day, not friday + 7
        with pytest.raises(ReportDataError):
            render_report(conn, friday + timedelta(days=1))


def test_a_backfill_ending_on_days_without_data_reports_its_latest_day_with_data(warehouse):
    # the partitions run to yesterday, the data ended a day earlier: a whole backfill left no report
    from orchestration.defs.report.assets import reported_day

    after = [LATER + timedelta(days=d) for d in (1, 2)]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert reported_day(conn, [AS_OF, LATER, *after]) == LATER
        assert reported_day(conn, [AS_OF]) == AS_OF
        assert reported_day(conn, after) == after[-1]  # nothing in the range: the run's day, skipped with why


def test_missing_tables_become_notes(tmp_path):
    db = tmp_path / "kpi_only.duckdb"
    with duckdb.connect(str(db)) as conn:
        put(
            conn,
            "marts.kpi_daily",
            [dict(date=AS_OF, active_users=10, conversion_rate=0.1, revenue_per_active_user=2.0)],
        )
    report = build(db)
    assert report.plots == ["kpis"]
    assert "attribution.experiment_results is not in this database" in report.html
    assert "raw_quarantine.* is not in this database" in report.html


def test_cli_report(warehouse, tmp_path, capsys):
    from orchestration.cli import main

    assert main(["report", "--db", str(warehouse), "--out", str(tmp_path / "r")]) == 0
    written = tmp_path / "r" / f"impact_ledger_{LATER.isoformat()}.html"  # default: the latest day with data
    assert capsys.readouterr().out.strip() == str(written) and written.is_file()
    assert main(["report", "--db", str(warehouse), "--out", str(tmp_path / "r"), "--date", "2026-03-10"]) == 0
    assert main(["report", "--db", str(warehouse), "--date", "2020-01-01"]) == 2
    assert "nothing to report for 2020-01-01" in capsys.readouterr().err
    assert main(["report", "--db", str(tmp_path / "missing.duckdb")]) == 2


def test_fairness_shows_the_published_verdicts_not_a_recomputation(warehouse, tmp_path):
    """One computation, one answer: the report shows marts.bias_verdicts as stored for the as-of day's window."""
    with duckdb.connect(str(warehouse)) as conn:
        # a verdict the rates would fail, published as passing with a value no recomputation would give
        conn.execute(
            "UPDATE marts.bias_verdicts SET passed = true, passes_disparate_impact = true, "
            "disparate_impact_ratio = 0.777 WHERE date = ?",
            [AS_OF],
        )
    report = build(warehouse)
    page = parse(report.html)
    assert page.summary["fairness_failures"] == []
    assert page.summary["fairness_window"]["end"] == AS_OF.isoformat()  # not the later window
    # 0.777 below 0.80 yet passing: a gap within noise, inconclusive
    assert "0.777" in report.html and "no assessed fairness verdict fails; 2 gap(s) beyond a limit only" in report.html
    # the groups too small to judge are named beside the pass (its group "tiny" has 5 predictions)
    assert "age_band: tiny left out of every verdict (fewer than" in report.html


def test_a_drops_worst_value_is_its_lowest_rate_per_version(warehouse):
    # recall drops of two versions: the table said worst 0.3103 (the highest) under v2's threshold
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM marts.alerts")
        for version, value, threshold, d in (
            ("v1", 0.25, 0.47, DAYS[3]),  # the worst day before the last one
            ("v1", 0.30, 0.47, DAYS[4]),
            ("v2", 0.3103, 0.49, DAYS[5]),
            ("v2", 0.1867, 0.49, DAYS[6]),
        ):
            conn.execute(
                "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
                "VALUES (?, 'churn', ?, 'recall_drop', '', ?, ?, ?)",
                [d, version, value, threshold, f"z-test ({value} on {d})"],
            )
    alerts = {
        (a["model_version"], a["worst_value"], a["threshold"], a["worst_date"], a["rule"])
        for a in parse(build(warehouse).html).summary["alerts"]
    }
    # with the worst day's own rule text (a pooled coverage rule's counts are its day's)
    assert alerts == {
        ("v1", 0.25, 0.47, str(DAYS[3]), f"z-test (0.25 on {DAYS[3]})"),
        ("v2", 0.1867, 0.49, str(DAYS[6]), f"z-test (0.1867 on {DAYS[6]})"),
    }


def test_fairness_ends_at_the_models_last_prediction_day(warehouse):
    # a window ending after the model stopped holds fewer of its days: its verdict is not the model's news
    model = MODELS[0]
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN predictions BIGINT DEFAULT 1000")
        conn.execute(
            "UPDATE marts.model_health_daily SET predictions = 0 WHERE model_id = ? AND date > ?", [model, AS_OF]
        )
    summary = parse(build(warehouse, as_of=LATER).html).summary
    assert summary["models"][model]["fairness_window"]["end"] == str(AS_OF)


def test_empty_fairness_tables_say_there_are_no_verdicts(warehouse):
    # a project whose models have no protected attribute (or no prediction yet): the tables exist without rows
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM marts.bias_group_rates; DELETE FROM marts.bias_verdicts")
    assert "No fairness verdicts (marts.bias_verdicts)" in build(warehouse).html


def test_a_model_whose_newest_window_compared_nothing_shows_its_last_verdict(warehouse, tmp_path):
    # a model that stopped predicting months before the as-of day: the report showed only its newest window,
    # every group grey and "passed: yes", while the window before had failed
    model = MODELS[0]  # the fixture's model with fairness rows
    assert parse(build(warehouse, as_of=LATER).html).summary["models"][model]["fairness_window"]["end"] == str(LATER)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "UPDATE marts.bias_verdicts SET eligible_groups = '', disparate_impact_ratio = NULL, passed = true "
            "WHERE date = ? AND model_id = ?",
            [LATER, model],
        )
    report = build(warehouse, as_of=LATER)
    assert parse(report.html).summary["models"][model]["fairness_window"] == {
        "start": str(AS_OF - timedelta(days=int(CONFIG.bias["window_days"]) - 1)),
        "end": str(AS_OF),
    }
    assert f"window {AS_OF - timedelta(days=int(CONFIG.bias['window_days']) - 1)} .. {AS_OF}</h3>" in report.html


def test_a_verdict_that_compared_no_groups_reads_not_assessed_not_passed(warehouse):
    # a trial's risk score: "passed: yes" with every metric blank beside the text "not assessed"
    model = MODELS[0]
    with duckdb.connect(str(warehouse)) as conn:
        attributes = [
            a
            for (a,) in conn.execute(
                "SELECT DISTINCT attribute FROM marts.bias_verdicts WHERE date = ? AND model_id = ? ORDER BY 1",
                [AS_OF, model],
            ).fetchall()
        ]
        conn.execute(
            "UPDATE marts.bias_verdicts SET eligible_groups = '', disparate_impact_ratio = NULL, passed = true "
            "WHERE date = ? AND model_id = ? AND attribute = ?",
            [AS_OF, model, attributes[0]],
        )
    html = build(warehouse).html
    start = html.index("<h3>Verdicts</h3>")
    verdicts = html[start : html.index("</table>", start)]
    assert verdicts.count("<td>not assessed</td>") == 1 and "<th>passed</th>" not in verdicts


def test_layout_cues_units_counts_gates_cbpe_and_significance(warehouse, tmp_path):
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN estimated_precision DOUBLE")
        conn.execute("UPDATE marts.model_health_daily SET estimated_precision = 0.55")
        conn.execute("ALTER TABLE attribution.experiment_results ADD COLUMN significant BOOLEAN")
        # significant from the 6th result day on (hand-set), the rest not
        conn.execute("UPDATE attribution.experiment_results SET significant = as_of_date >= DATE '2026-03-08'")
    report = build(warehouse)
    page = parse(report.html)
    # quarantine counts: whole-number ticks only (at most 3 rows a day: step 1 from 0)
    y = page.figures["quarantine"]["layout"]["yaxis"]
    assert (y["dtick"], y["tick0"], y["tickformat"]) == (1, 0, ",d")
    # KPI axes say their units
    kpi = page.figures["kpis"]["layout"]
    assert kpi["yaxis2"]["tickformat"] == ".1%" and kpi["yaxis3"]["title"]["text"] == load_config().currency
    # gates: no '[]' literal, and "nothing failed" is good news, not a warning
    assert "[]" not in re.sub(r"<script.*?</script>", "", report.html, flags=re.S)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE quality.gate_results SET passed = true")
    assert '<p class="note ok">No gate failed up to 2026-03-10.</p>' in build(warehouse).html
    # CBPE beside realised precision: the newest labelled day's pair
    pair = page.summary["models"][EVIL]["precision"]
    assert (pair["realised"], pair["estimated_same_day"], pair["date"]) == (0.6, 0.55, AS_OF.isoformat())
    health = page.figures[[p for p in report.plots if p.startswith("health-rec")][0]]
    assert numbers(trace(health, "estimated precision (CBPE, label-free)")["y"]) == [0.55] * 10
    # significance markers: filled on the significant days, hollow on the others
    lift = page.figures[[p for p in report.plots if p.startswith("lift-rec")][0]]
    filled = trace(lift, "significant (adjusted p < alpha)")
    hollow = trace(lift, "not significant (interval crosses 0 or adjusted p >= alpha)")
    days = [d.isoformat() for d in DAYS[2:10]]
    assert [d for d, v in zip(filled["x"], filled["y"]) if v is not None] == [d for d in days if d >= "2026-03-08"]
    assert [d for d, v in zip(hollow["x"], hollow["y"]) if v is not None] == [d for d in days if d < "2026-03-08"]
    assert "not tested (no interval: the headline table says why)" not in [t["name"] for t in lift["data"]]
    # a day not tested is drawn as such, not as "not significant" (a trial read its untested days as tested nulls)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE attribution.experiment_results ADD COLUMN degenerate_reason VARCHAR")
        conn.execute(
            "UPDATE attribution.experiment_results SET degenerate_reason = 'too few events', significant = NULL "
            "WHERE as_of_date < DATE '2026-03-05'"
        )
    report = build(warehouse)
    lift = parse(report.html).figures[[p for p in report.plots if p.startswith("lift-rec")][0]]
    hollow = trace(lift, "not significant (interval crosses 0 or adjusted p >= alpha)")
    untested = trace(lift, "not tested (no interval: the headline table says why)")
    assert [d for d, v in zip(untested["x"], untested["y"]) if v is not None] == [d for d in days if d < "2026-03-05"]
    assert [d for d, v in zip(hollow["x"], hollow["y"]) if v is not None] == [
        d for d in days if "2026-03-05" <= d < "2026-03-08"
    ]


def test_a_project_without_experiments_is_told_its_models_worth_cannot_be_measured(warehouse):
    # a monitoring-only project read "No model value ... yet", as if one were coming
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM attribution.model_impact")
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    assert (
        "no experiment gives a model a never-exposed holdout" in text and " yet." not in text.split("holdout")[0][-80:]
    )
    with duckdb.connect(str(warehouse)) as conn:  # an experiment, its model's value not computed yet
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        conn.execute("CREATE TABLE raw.experiments AS SELECT 'exp' AS experiment_id")
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    assert f"No model value (attribution.model_impact) up to {AS_OF} yet." in text


def test_a_model_without_a_holdout_is_named_as_not_measured(warehouse):
    # the headline listed only the models behind an experiment: the others vanished from "what each is worth"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN predictions BIGINT DEFAULT 100")
        conn.execute("DELETE FROM attribution.model_impact WHERE model_id = 'churn'")
    report = build(warehouse)
    text = re.sub(r"<[^>]+>", "", report.html)
    assert "Not measured: churn: no never-exposed holdout (monitoring only)" in text
    assert parse(report.html).summary["unmeasured_models"] == ["churn"]


def test_a_small_models_health_says_what_is_not_judged_and_why(warehouse):
    # ~5 predictions a day: its PSI of 3-8 stood above the red 0.2 line with no alert, its precision panel empty,
    # and nothing on the page said why (only init had)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN predictions BIGINT DEFAULT 1000")
        conn.execute("UPDATE marts.model_health_daily SET predictions = 5, labelled = 3 WHERE model_id = 'churn'")
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    minimum, psi = CONFIG.min_labelled, CONFIG.rule("psi", "churn")["min_count"]
    # the span the counts cover is said (summary counts its last 30 days; the figure shows every day)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        first, last = conn.execute(
            "SELECT min(date), max(date) FROM marts.model_health_daily WHERE model_id = 'churn' AND date <= ?",
            [AS_OF],
        ).fetchone()
    shown = f"over the days shown ({first} to {last})"
    assert (
        f"churn: precision, recall and ECE are not shown nor judged: at most 3 labelled predictions a day {shown}, "
        f"fewer than alerts.min_labelled ({minimum:g}); its PSI is drawn but not judged: a median of 5 predictions a "
        f"day {shown}, fewer than alerts.rules.psi.min_count ({psi:g})" in text
    )
    assert f"{html.unescape(EVIL)}: precision, recall" not in html.unescape(text)  # the big model: judged


def test_a_weekly_batch_models_health_is_counted_a_batch(warehouse):
    # summary said "a batch" of a weekly model where the report said "a median of 0 predictions a day" (the days
    # between its batches empty); a small daily model keeps its days
    from orchestration.lib.report_data import batch_models

    mondays = {date(2026, 3, 2): (6, 4), date(2026, 3, 9): (8, 2)}  # predictions, labelled
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN predictions BIGINT DEFAULT 0")
        conn.execute("UPDATE marts.model_health_daily SET labelled = 0 WHERE model_id = 'churn'")
        for day, (predictions, labelled) in mondays.items():
            conn.execute(
                "UPDATE marts.model_health_daily SET predictions = ?, labelled = ? WHERE model_id = 'churn' "
                "AND date = ?",
                [predictions, labelled, day],
            )
        conn.execute("UPDATE marts.model_health_daily SET predictions = 5, labelled = 3 WHERE model_id = ?", [EVIL])
        # the decision is the report day's: one Monday by 03-08 is no batch yet
        assert batch_models(conn, AS_OF) == {"churn": 7} and batch_models(conn, date(2026, 3, 8)) == {}
    text = html.unescape(re.sub(r"<[^>]+>", "", build(warehouse).html))
    psi = CONFIG.rule("psi", "churn")["min_count"]
    # by hand: the batches' median (6 + 8) / 2 = 7, their most labelled 4
    assert "churn: precision, recall and ECE are not shown nor judged: at most 4 labelled predictions a batch" in text
    assert re.search(
        rf"a median of 7 predictions a batch over the days shown \(\S+ to \S+\), fewer than "
        rf"alerts.rules.psi.min_count \({psi:g}\)",
        text,
    )
    assert f"{EVIL}: precision, recall and ECE are not shown nor judged: at most 3 labelled predictions a day" in text
    assert re.search(
        rf"a median of 5 predictions a day over the days shown \(\S+ to \S+\), fewer than "
        rf"alerts.rules.psi.min_count \({psi:g}\)",
        text,
    )


def _small_churn_model(conn) -> None:
    """The fixture's churn model at ~5 predictions and 3 labels a day (2 TP, 1 FP, 1 FN): too few to judge a day."""
    conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN predictions BIGINT DEFAULT 1000")
    for column in ("true_positives", "false_positives", "false_negatives", "true_negatives"):
        conn.execute(f"ALTER TABLE marts.model_health_daily ADD COLUMN {column} BIGINT DEFAULT 0")
    conn.execute(
        "UPDATE marts.model_health_daily SET predictions = 5, labelled = 3, true_positives = 2, "
        "false_positives = 1, false_negatives = 1 WHERE model_id = 'churn'"
    )


def test_a_small_models_precision_and_recall_are_pooled_over_30_days(warehouse):
    # ~50 predictions a day of a lender's model: the report showed no realised precision or recall at all (each day
    # below alerts.min_labelled) while `summary` pooled 30 days to 0.547 / 0.488
    from statsmodels.stats.proportion import proportion_confint

    with duckdb.connect(str(warehouse)) as conn:
        _small_churn_model(conn)
        days = conn.execute(
            "SELECT count(*) FROM marts.model_health_daily WHERE model_id = 'churn' AND date > ?::DATE - 30 "
            "AND date <= ?",
            [AS_OF, AS_OF],
        ).fetchone()[0]
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    tp, flagged, positives = 2 * days, 3 * days, 3 * days  # the oracle: the days' counts summed
    said = [f"churn, pooled over the 30 days to {AS_OF} (labels known so far; Wilson 95% intervals):"]
    for name, trials in (("precision", flagged), ("recall", positives)):
        low, high = proportion_confint(tp, trials, method="wilson")
        said.append(f"{name} {tp / trials:.3f} [{low:.3f}, {high:.3f}] of {trials:,}")
    assert all(part in text for part in said), said
    # the model stopped 4 days before the report's day (labels still landing): its last 30 days are pooled (a
    # trial's report on a later day pooled nothing where summary showed them)
    stop = AS_OF - timedelta(days=4)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM marts.model_health_daily WHERE model_id = 'churn' AND date > ?", [stop])
        days = conn.execute(
            "SELECT count(*) FROM marts.model_health_daily WHERE model_id = 'churn' AND date > ?::DATE - 30 "
            "AND date <= ?",
            [stop, stop],
        ).fetchone()[0]
    low, high = proportion_confint(2 * days, 3 * days, method="wilson")
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    assert (
        f"churn, pooled over the 30 days to {stop} (labels known so far; Wilson 95% intervals): v1: precision "
        f"{2 / 3:.3f} [{low:.3f}, {high:.3f}] of {3 * days:,}"
    ) in text


def test_a_day_with_every_prediction_labelled_is_complete_before_its_horizon(tmp_path):
    # a trial's election: every label landed on one day; "labels complete 0/30 days" with 760 of 760 labelled
    from orchestration.lib.report_data import label_maturity

    days = [AS_OF - timedelta(days=i) for i in range(10)]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.model_health_daily (model_id VARCHAR, model_version VARCHAR, date DATE, "
            "labels_as_of DATE, predictions BIGINT, labelled BIGINT, positive_rate DOUBLE, estimated_precision DOUBLE)"
        )
        conn.executemany(
            "INSERT INTO marts.model_health_daily VALUES ('m', 'v1', ?, ?, 20, ?, 0.5, NULL)",
            [[d, AS_OF, 20 if i % 3 else 19] for i, d in enumerate(days)],  # days 0, 3, 6, 9 back: one unlabelled
        )
        maturity = label_maturity(conn, AS_OF, 30, lambda model: 41)
    # by hand: no day is 41 days old; the 6 days with 20 of 20 labelled are complete
    assert maturity[["days", "complete_days"]].values.tolist() == [[10, 6]]


def test_a_small_models_pooled_rates_say_how_many_days_have_all_their_labels(warehouse):
    # summary said "labels complete 0/30 days, est. precision 0.786" beside a risk score's early precision; the
    # report's pooled note gave the early precision alone
    horizon = CONFIG.label_horizon("churn")
    known_through = AS_OF + timedelta(days=horizon - 5)  # the newest labels counted: days to AS_OF - 5 complete
    with duckdb.connect(str(warehouse)) as conn:
        _small_churn_model(conn)
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN positive_rate DOUBLE DEFAULT 0.5")
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN estimated_precision DOUBLE")
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN labels_as_of DATE")
        conn.execute(
            "UPDATE marts.model_health_daily SET labels_as_of = ?, "
            "estimated_precision = CASE WHEN day(date) % 2 = 0 THEN 0.6 ELSE 0.7 END WHERE model_id = 'churn'",
            [known_through],
        )
        dates = [
            d
            for (d,) in conn.execute(
                "SELECT date FROM marts.model_health_daily WHERE model_id = 'churn' AND date > ?::DATE - 30 "
                "AND date <= ?",
                [AS_OF, AS_OF],
            ).fetchall()
        ]
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    # by hand: a day's labels are all in once its horizon has passed by the newest labels_as_of;
    # the estimate weighs each day by its predicted positives (equal here)
    complete = sum(d + timedelta(days=horizon) <= known_through for d in dates)
    estimate = sum(0.6 if d.day % 2 == 0 else 0.7 for d in dates) / len(dates)
    assert 0 < complete < len(dates)  # some days past their horizon, some not
    assert f"labels complete on {complete} of {len(dates)} days, label-free estimated precision {estimate:.3f}" in text
    assert "raw scores" not in text  # a mart without cbpe_calibrated does not say which scores it used
    # no day's estimate used a calibration learnt from labels: said (a trial's rate-based score "estimated" 0.609
    # where the realised precision came to 0.035); one calibrated day and it is the estimate as before
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("ALTER TABLE marts.model_health_daily ADD COLUMN cbpe_calibrated BOOLEAN DEFAULT false")
    raw = f"label-free estimated precision {estimate:.3f} (raw scores: no calibration learnt from labels yet)"
    assert raw in re.sub(r"<[^>]+>", "", build(warehouse).html)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE marts.model_health_daily SET cbpe_calibrated = true WHERE date = ?", [dates[-1]])
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    assert f"estimated precision {estimate:.3f}" in text and "raw scores" not in text
    # a calibration learnt from few labels is mostly the raw scores: said, as summary's "(67 labels)" (a trial's
    # report gave the estimate bare where summary named its 198 labels)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE marts.model_health_daily SET cbpe_calibrated = true")  # every day's bins learnt
        conn.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
        conn.execute(
            "CREATE OR REPLACE TABLE intermediate.int_score_calibration AS SELECT 'churn' AS model_id, "
            "'v1' AS model_version, b AS score_bin, 10 + b AS labelled FROM range(3) t(b)"
        )
    few = f"estimated precision {estimate:.3f} (its calibration learnt from {10 + 11 + 12} labels: each score bin"
    assert few in re.sub(r"<[^>]+>", "", build(warehouse).html)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE intermediate.int_score_calibration SET labelled = 100")
    text = re.sub(r"<[^>]+>", "", build(warehouse).html)
    assert f"estimated precision {estimate:.3f}" in text and "calibration learnt from" not in text


def test_reports_older_than_keep_days_are_removed_and_nothing_else(tmp_path):
    # a daily report is ~5 MB (plotly inline): a year of them was 2 GB, more than the warehouse
    from datetime import timedelta

    from orchestration.lib.project_config import parse_config
    from orchestration.lib.report import prune_reports, report_path

    newest = AS_OF
    for back in range(5):
        report_path(tmp_path, newest - timedelta(days=back)).write_text("x")
    (tmp_path / "notes.html").write_text("mine")
    assert prune_reports(tmp_path, newest, None) == []
    removed = prune_reports(tmp_path, newest, 3)
    assert [p.name for p in removed] == [f"impact_ledger_{newest - timedelta(days=b)}.html" for b in (4, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.html"] + [f"impact_ledger_{newest - timedelta(days=b)}.html" for b in (0, 1, 2)]
    )
    assert (
        parse_config({}).reports.keep_days == 90
        and parse_config({"reports": {"keep_days": None}}).reports.keep_days is None
    )


def test_a_headline_whose_results_end_before_the_report_day_says_their_day(warehouse):
    # a trial: the headline read "as of" the report's day, its rows two months older (the experiments' tables ended)
    with duckdb.connect(str(warehouse)) as conn:
        for table in ("attribution.experiment_results", "attribution.model_impact"):
            conn.execute(f"DELETE FROM {table} WHERE as_of_date > ?", [AS_OF])
    html = build(warehouse, LATER).html
    assert f"cumulative since its experiment started, as of {AS_OF}, the newest day with results up to {LATER}." in html
    assert f"cumulative since its experiment started, as of {AS_OF}. " in build(warehouse, AS_OF).html


def test_a_report_built_again_after_later_labels_says_they_are_counted(tmp_path):
    # a trial's report of 2025-05-09 built again a year later: "data up to 2025-05-09" beside a precision only the
    # later labels gave (the morning's report had none)
    landed = AS_OF + timedelta(days=40)
    later = _health_days(
        tmp_path / "later.duckdb", lambda i: landed if i == 3 else AS_OF - timedelta(days=i) + timedelta(days=7)
    )
    with duckdb.connect(str(later), read_only=True) as conn:
        report = render_report(conn, AS_OF)
    assert parse(report.html).summary["labels_known_by"] == landed.isoformat()
    assert f"count the labels known by {landed}, not only those known on {AS_OF}" in report.html
    # the morning's own report: the recent rows stamped day + label_lookback_days are no later labels
    morning = _health_days(tmp_path / "morning.duckdb", lambda i: AS_OF - timedelta(days=i) + timedelta(days=7))
    with duckdb.connect(str(morning), read_only=True) as conn:
        report = render_report(conn, AS_OF)
    assert parse(report.html).summary["labels_known_by"] == AS_OF.isoformat() and "Built again later" not in report.html


def test_the_kpi_plot_says_its_newest_days_conversion_is_not_final(warehouse, tmp_path, monkeypatch):
    # a trial's plot fell from 18% to 2.6% on its last two days, whose orders had not landed, without a word
    config = tmp_path / "project.yml"
    config.write_text("kpi_lookback_days: 3\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    built = DAYS[-1]  # the warehouse's newest KPI day: days within 3 of it have not had their last run yet
    first = built - timedelta(days=2)
    text = html.unescape(build(warehouse, built).html)
    assert f"The conversion rate of the newest 3 day(s) ({first} .. {built}) is not final" in text
    # a day's report built later shows only its own days still open
    partly = html.unescape(build(warehouse, built - timedelta(days=1)).html)
    assert f"The conversion rate of the newest 2 day(s) ({first} .. {built - timedelta(days=1)}) is not final" in partly
    # built again once later runs settled its days: nothing to say (a re-trial's rebuilt report)
    assert "is not final" not in html.unescape(build(warehouse, first - timedelta(days=1)).html)
