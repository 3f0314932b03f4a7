"""A model's change of live version is said, once per change, by summary and the report: the positive rate of the
new version's first 7 days with predictions against the old version's last 7, and the PSI of those new scores
against the old version's reference bins (each version's own drift never compares the two). On a hand-made
warehouse, against numbers worked out by hand."""

import html
import math
from datetime import date, timedelta

import duckdb
import pytest

from orchestration import summary
from orchestration.lib.attribution import IMPACT_SCHEMA, RESULT_SCHEMA
from orchestration.lib.retraining import REQUEST_SCHEMA
from orchestration.lib.report import render_report
from orchestration.lib.version_changes import change_text, version_changes
from orchestration.lib.warehouse import ensure_table
from orchestration.defs.model_health.alerts import ALERTS_SCHEMA
from tests.unit.test_report import parse, put

DAY = date(2026, 3, 1)


def day(i: int) -> date:
    return DAY + timedelta(days=i)


def health(model: str, version: str, days: range, positives, labels=None) -> list[dict]:
    """10 predictions a day, ``positives(i)`` of them flagged on day i; ``labels``: (true positives, false
    positives, false negatives, ECE) of each day, else none labelled."""
    tp, fp, fn, ece = labels or (0, 0, 0, None)
    return [
        dict(
            date=day(i),
            model_id=model,
            model_version=version,
            predictions=10,
            positive_rate=positives(i) / 10,
            labelled=tp + fp + fn + (1 if labels else 0),
            true_positives=tp,
            false_positives=fp,
            false_negatives=fn,
            precision=None,
            recall=None,
            expected_calibration_error=ece,
            estimated_precision=None,
        )
        for i in days
    ]


def profile(feature: str, kind: str, bin_: str, lower_edge, count: int) -> dict:
    """An int_reference_profiles row of m's v1, its reference window days 0-6."""
    return dict(
        model_id="m",
        model_version="v1",
        feature=feature,
        feature_type=kind,
        bin=bin_,
        lower_edge=lower_edge,
        reference_count=count,
        reference_start_date=day(0),
        reference_end_date=day(6),
    )


def deciles(feature: str) -> list[dict]:
    """v1's reference of a numeric feature: the deciles 0.1 .. 0.9, 10 values in each bin (bin k: edge_k < value <=
    edge_k+1)."""
    return [profile(feature, "numeric", str(k), k / 10 if k else None, 10) for k in range(10)]


@pytest.fixture
def warehouse(tmp_path, request):
    path = tmp_path / "w.duckdb"
    labels = getattr(request, "param", (None, None))  # the labels of v1's and v2's days
    rows = (
        # m: v1 on days 0-8 (5 flagged a day on days 0-1, 2 on the last 7), v2 from day 9 (3 a day on its first 7,
        # day 13 missing: a day without predictions is not one of the 7; 9 a day after them)
        health("m", "v1", range(9), lambda i: 5 if i < 2 else 2, labels[0])
        + health("m", "v2", [i for i in range(9, 20) if i != 13], lambda i: 3 if i <= 16 else 9, labels[1])
        # n: one version; old: its change is 40 days before its newest day (not within the 30)
        + health("n", "a", range(20), lambda i: 1)
        + health("old", "a", range(-40, -35), lambda i: 1)
        + health("old", "b", range(-35, 20), lambda i: 1)
    )
    # v1's score reference: the deciles 0.1 .. 0.9, 10 values in each bin (bin k: edge_k < score <= edge_k+1)
    profiles = deciles("score")
    # v2's first 7 days (9-16 but 13): 30 scores of 0.05 and 5 on the edge 0.1 (bin 0), 35 of 0.95 (bin 9); not
    # counted: a null score, a score of day 17, and v1's scores of the same days
    scores = [(day(9 + i % 8 if 9 + i % 8 != 13 else 9), "v2", 0.05) for i in range(30)]
    scores += [(day(10), "v2", 0.1)] * 5 + [(day(16), "v2", 0.95)] * 35
    scores += [(day(10), "v2", None), (day(17), "v2", 0.5), (day(10), "v1", 0.5)]
    predictions = [dict(model_id="m", model_version=v, prediction_date=d, score=s) for d, v, s in scores]
    with duckdb.connect(str(path)) as conn:
        put(conn, "marts.model_health_daily", rows)
        put(conn, "intermediate.int_reference_profiles", profiles)
        put(conn, "staging.stg_predictions", predictions)
        for table, schema in (
            ("attribution.experiment_results", RESULT_SCHEMA),
            ("attribution.model_impact", IMPACT_SCHEMA),
            ("marts.alerts", ALERTS_SCHEMA),
            ("marts.retraining_requests", REQUEST_SCHEMA),
        ):
            ensure_table(conn, table, schema)
    return path


# by hand: reference shares 0.1 in each bin; v2's shares 0.5 in bins 0 and 9, none (the 1e-4 floor) in 8 bins
EXPECTED_PSI = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)


def test_a_change_compares_the_new_versions_first_days_with_the_old_versions_last(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        changes = version_changes(conn, None, 30)
        before = version_changes(conn, day(8), 30)  # as of the old version's last day: no change yet
    assert before.empty
    [c] = changes.itertuples()  # n never changed; old's change is more than 30 days before its newest day
    assert (c.model_id, c.old_version, c.new_version, c.change_day.date()) == ("m", "v1", "v2", day(9))
    assert (c.old_from.date(), c.old_to.date(), c.old_predictions, c.old_positives) == (day(2), day(8), 70, 14)
    # the new version's first 7 days with predictions: 9-16 without 13
    assert (c.new_from.date(), c.new_to.date(), c.new_predictions, c.new_positives) == (day(9), day(16), 70, 21)
    assert c.score_psi == pytest.approx(EXPECTED_PSI, rel=1e-12)


def test_summary_and_report_say_the_change_in_the_same_words(warehouse, capsys, tmp_path):
    line = (
        f"m: version v1 -> v2 on {day(9)}: flags 30.0% (was 20.0%); score PSI {EXPECTED_PSI:.2f} against v1's "
        f"reference ({day(0)} .. {day(6)}) (on the new version's 70 predictions, fewer than "
        "alerts.rules.psi.min_count (200), where PSIs of 0.2 and more arise by chance); over the new version's first "
        f"7 day(s) with predictions, {day(9)} .. "
        f"{day(16)} (70 predictions) and the old one's last 7 day(s) with predictions, {day(2)} .. {day(8)} "
        "(70 predictions)"
    )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        summary.read_and_print(conn, tmp_path)
        report = render_report(conn, day(19))
    printed = capsys.readouterr().out
    assert f"\n  {line}\n" in printed and printed.count(" -> ") == 1
    assert f'<p class="note">{html.escape(line)}</p>' in report.html
    [said] = parse(report.html).summary["models"]["m"]["version_changes"]
    assert said == {
        "date": day(9).isoformat(),
        "old_version": "v1",
        "new_version": "v2",
        "old_positive_rate": pytest.approx(0.2),
        "new_positive_rate": pytest.approx(0.3),
        "score_psi": pytest.approx(EXPECTED_PSI, rel=1e-12),
    }


def test_without_the_predictions_the_rates_are_said_and_the_psi_is_not(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DROP TABLE staging.stg_predictions")  # the analytics snapshot: published marts only
        [c] = version_changes(conn, None, 30).itertuples()
        assert (c.old_positives, c.new_positives) == (14, 21) and math.isnan(c.score_psi)
        assert "score PSI not computed (this database lacks staging.stg_predictions" in change_text(c)
        # the tables there, but no score profile of the old version: said as that, not left to guess
        conn.execute("CREATE TABLE staging.stg_predictions (model_id VARCHAR, model_version VARCHAR, "
                     "prediction_date DATE, score DOUBLE)")  # fmt: skip
        conn.execute("DELETE FROM intermediate.int_reference_profiles")
        [c] = version_changes(conn, None, 30).itertuples()
    assert "score PSI not computed (v1 has no score reference);" in change_text(c)


@pytest.mark.parametrize("warehouse", [((8, 2, 10, 0.03), (3, 3, 1, 0.15))], indirect=True)
def test_a_change_compares_the_labels_known_so_far_too(warehouse):
    # a second trial: a retrain broke calibration (ECE 0.027 -> 0.165) and precision (0.469 -> 0.350); the line
    # said the flag rate and the score PSI only. By hand over 7 days a side: v1 precision 56 / 70, recall 56 / 126,
    # ECE 0.03 on every day; v2 21 / 42, 21 / 28, 0.15
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [c] = version_changes(conn, None, 30).itertuples()
    text = change_text(c)
    assert (
        f"flags 30.0% (was 20.0%); precision {21 / 42:.3f} (was {56 / 70:.3f}), recall {21 / 28:.3f} (was "
        f"{56 / 126:.3f}), mean daily ECE 0.150 (was 0.030) (labels known so far); score PSI"
    ) in text


@pytest.mark.parametrize("warehouse", [((8, 2, 10, 0.03), (3, 3, 1, 0.15))], indirect=True)
def test_labels_and_values_too_few_for_the_alerts_are_said_so(warehouse):
    # a trial's ~6 labels a day: a perfectly calibrated model's mean daily ECE is ~0.35 at that size (a simulation),
    # yet the line compared 0.340 with 0.382; and a PSI of 0.52 on 46 predictions where no feature shifted
    from orchestration.lib.alerts import load_alert_config
    from orchestration.lib.project_config import parse_config

    # by hand: v1's 7 days hold 20 labelled a day, v2's 6 (3 + 3 + 0 + ... as the world writes them)
    config = load_alert_config(parse_config({"alerts": {"min_labelled": 30}}))
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [c] = version_changes(conn, None, 30, config).itertuples()
    per_day = min(c.new_ece_labelled / c.new_days, c.old_ece_labelled / c.old_days)
    text = change_text(c)
    assert (
        f"(labels known so far; ~{per_day:.0f} a day on the side with fewer, under alerts.min_labelled (30): noise at that size)"
        in text
    )
    assert "(on the new version's 70 predictions, fewer than alerts.rules.psi.min_count (200)" in text
    roomy = load_alert_config(parse_config({"alerts": {"min_labelled": 1, "rules": {"psi": {"min_count": 50}}}}))
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [c] = version_changes(conn, None, 30, roomy).itertuples()
    assert "(labels known so far);" in change_text(c) and "min_count" not in change_text(c)


def test_a_change_says_each_features_psi_against_the_old_versions_reference(warehouse):
    import pandas as pd

    # a trial: a population shift at a retrain was absorbed into the new version's own reference, and the change's
    # line compared the scores only
    profiles = deciles("feature_x") + [
        profile("feature_c", "categorical", b, None, n) for b, n in (("a", 60), ("b", 40))
    ]
    # v2's first days: feature_x all in bins 0-4 (0.05 .. 0.45), feature_c 'a' 20, 'b' 20 and a new 'z' 10
    values = [(0.05 + 0.1 * (i % 5), "a" if i < 20 else "b" if i < 40 else "z") for i in range(50)]
    with duckdb.connect(str(warehouse)) as conn:
        conn.register("_profiles", pd.DataFrame(profiles))
        conn.execute("INSERT INTO intermediate.int_reference_profiles BY NAME SELECT * FROM _profiles")
        conn.execute("ALTER TABLE staging.stg_predictions ADD COLUMN feature_x DOUBLE")
        conn.execute("ALTER TABLE staging.stg_predictions ADD COLUMN feature_c VARCHAR")
        for x, c in values:
            conn.execute(
                "INSERT INTO staging.stg_predictions (model_id, model_version, prediction_date, score, feature_x, "
                "feature_c) VALUES ('m', 'v2', ?, NULL, ?, ?)",
                [day(11), x, c],
            )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [c] = version_changes(conn, None, 30).itertuples()
    # by hand (numpy-free): x's shares 0.2 in bins 0-4, none (the 1e-4 floor) in 5-9 against 0.1 each;
    # c's 0.4, 0.4, 0.2 against 0.6, 0.4 and none ('z': the floor)
    x = 5 * (0.2 - 0.1) * math.log(0.2 / 0.1) + 5 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    cat = (0.4 - 0.6) * math.log(0.4 / 0.6) + 0 + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert list(c.feature_psi) == sorted(
        ["feature_x", "feature_c"], key=lambda f: -{"feature_x": x, "feature_c": cat}[f]
    )
    assert c.feature_psi["feature_x"] == pytest.approx(x, rel=1e-12)
    assert c.feature_psi["feature_c"] == pytest.approx(cat, rel=1e-12)
    first, second = sorted([("feature_x", x), ("feature_c", cat)], key=lambda p: -p[1])
    assert f"; feature PSI against v1's reference: {first[0]} {first[1]:.2f}, {second[0]} {second[1]:.2f}; over" in (
        change_text(c)
    )


def test_a_change_while_the_old_version_was_drifting_says_the_new_reference_is_drifted(warehouse):
    # a trial: a scanner recalibration raised PSI alerts on v1's features until v2 started on day 9; v2's reference
    # window (its first days) was made of the drifted inputs, and every alert then read "active: no"
    with duckdb.connect(str(warehouse)) as conn:
        for when, feature in ((1, "feature_old"), (6, "feature_a"), (8, "feature_a"), (7, "feature_b")):
            conn.execute(
                "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
                "VALUES (?, 'm', 'v1', 'psi', ?, 0.4, 0.2, '> 0.2')",
                [day(when), feature],
            )
        conn.execute(  # another metric, and another model's drift: not the change's
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES (?, 'm', 'v1', 'precision_drop', '', 0.4, 0.6, 'p < 0.01'), "
            "(?, 'n', 'a', 'psi', 'feature_n', 0.4, 0.2, '> 0.2')",
            [day(8), day(8)],
        )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [c] = version_changes(conn, None, 30).itertuples()
    # the 7 days before v2's first day (day 9): days 2-9; feature_old's alert on day 1 had ended
    assert c.drifting == {"feature_a": day(8), "feature_b": day(7)}
    assert (
        f"; v1 was drifting when it stopped (PSI alerts on feature_a, feature_b up to {day(8)}): v2's reference window "
        "is made of those drifted inputs" in change_text(c)
    )
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM marts.alerts")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [c] = version_changes(conn, None, 30).itertuples()
    assert c.drifting == {} and "drifting" not in change_text(c)


def _fisher_two_sided(k1: int, n1: int, k0: int, n0: int) -> float:
    """Fisher's exact two-sided p by its definition: the hypergeometric probability of every table with the margins
    of the observed one that is no more likely than it."""
    from scipy.stats import hypergeom

    flagged, total = k1 + k0, n1 + n0
    support = range(max(0, flagged - n0), min(flagged, n1) + 1)
    observed = hypergeom.pmf(k1, total, flagged, n1)
    return float(sum(p for x in support if (p := hypergeom.pmf(x, total, flagged, n1)) <= observed * (1 + 1e-7)))


def test_a_new_version_whose_flag_rate_or_scores_move_raises_version_change_alerts(tmp_path):
    # a vendor's v2 scored 0.1 higher (flags 3.5% -> 24.1%, score PSI 3.0 against v1's reference): each version's
    # drift reads against its own first days and labels came months later, so no alert or notification said so
    from scipy.stats import chi2_contingency

    from orchestration.lib.alerts import load_alert_config
    from orchestration.lib.project_config import parse_config
    from orchestration.lib.version_changes import version_change_breaches

    rows = health("m", "v1", range(9), lambda i: 1) + health("m", "v2", range(9, 13), lambda i: 6)
    rows += health("n", "a", range(13), lambda i: 1)  # one version: nothing to compare
    # v1's score reference: 30 values in each decile bin; v2's 60 scores a day, 50 in the top bin, 10 in bin 3
    profiles = [{**p, "reference_count": 30} for p in deciles("score")]
    scores = [(day(i), 0.95) for i in range(9, 13) for _ in range(50)] + [(day(i), 0.35) for i in range(9, 13)] * 10
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        put(conn, "marts.model_health_daily", rows)
        put(conn, "intermediate.int_reference_profiles", profiles)
        put(
            conn,
            "staging.stg_predictions",
            [dict(model_id="m", model_version="v2", prediction_date=d, score=s) for d, s in scores],
        )
        health_rows = conn.execute("SELECT * FROM marts.model_health_daily").df()
        versions = conn.execute(
            "SELECT model_id, model_version, min(date) AS first_date FROM marts.model_health_daily GROUP BY ALL"
        ).df()
        config = load_alert_config(parse_config({}))
        found = version_change_breaches(conn, health_rows, versions, config, day(0), day(12))
        # judged only on the run's days
        assert version_change_breaches(conn, health_rows, versions, config, day(13), day(20)).empty
    expected = []
    for i in range(1, 5):  # v2's day i: its first i days against v1's last 7 (7 of 70 flagged)
        k, n = 6 * i, 10 * i
        if abs((k / n) / 0.1 - 1) > 0.5 and _fisher_two_sided(k, n, 7, 70) < 0.01:
            expected.append((day(8 + i), "flag_rate", k / n, 0.1))
        current = [0, 0, 0, 10 * i, 0, 0, 0, 0, 0, 50 * i]
        p = chi2_contingency([[30] * 10, current], correction=False).pvalue
        shares = [max(c / sum(current), 1e-4) for c in current]
        psi = sum((s - 0.1) * math.log(s / 0.1) for s in shares)
        if sum(current) >= 200 and psi > 0.2 and p < 0.01:  # the default min_count: 200 a side
            expected.append((day(8 + i), "score", psi, 0.2))
    assert [e[:2] for e in expected] == [(day(9), "flag_rate"), (day(10), "flag_rate"), (day(11), "flag_rate")] + [
        (day(12), "flag_rate"),
        (day(12), "score"),
    ]
    assert [(r.date.date(), r.subject) for r in found.itertuples()] == [e[:2] for e in expected]
    assert found["value"].tolist() == pytest.approx([e[2] for e in expected], rel=1e-12)
    assert found["threshold"].tolist() == pytest.approx([e[3] for e in expected], rel=1e-12)
    assert set(found["metric"]) == {"version_change"} and set(found["model_version"]) == {"v2"}
    assert found["rule"].iloc[0] == (
        "v2 replaced v1 on 2026-03-10: flags 60.0% over its first 1 day(s) (6 of 10) against 10.0% over v1's last 7 "
        "(7 of 70): more than ±50% apart and Fisher's exact p < 0.01"
    )
    assert found["rule"].iloc[-1] == (
        f"v2 replaced v1 on 2026-03-10: score PSI {expected[-1][2]:.2f} over its first 4 day(s) (240 scores) against "
        "v1's reference (2026-03-01 .. 2026-03-07, 300 scores): above 0.2 and chi-square p < 0.01"
    )


def test_the_worst_version_change_is_the_flag_rate_furthest_from_the_old_versions():
    # a re-trial's report named the day least off (0.012 against 0.26) as the worst of a flag-rate drop, and the
    # health check took one maximum over a rate and a PSI
    import pandas as pd

    from orchestration.lib.alerts import summarise_breaches, worst_index

    rows = pd.DataFrame(
        {
            "date": pd.to_datetime(["2026-10-21", "2026-10-26", "2026-10-21", "2026-10-26"]),
            "metric": "version_change",
            "subject": ["flag_rate", "flag_rate", "score", "score"],
            "value": [0.01195, 0.0074, 3.2, 2.1],
            "threshold": [0.2577, 0.2577, 0.2, 0.2],
        }
    )
    rates = rows[rows["subject"] == "flag_rate"]
    assert worst_index("version_change", rates["value"], rates["threshold"]) == 1  # |0.0074 / 0.2577 - 1| largest
    assert summarise_breaches(rows, "m", "2026-10-21", "2026-10-26")["worst_value_by_metric"] == {
        "version_change (flag_rate)": 0.0074,
        "version_change (score)": 3.2,
    }
