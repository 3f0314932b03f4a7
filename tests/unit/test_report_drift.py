"""The report shows the distribution behind each PSI alert: the published reference and current bin shares
of every feature that alerted (newest alerted day up to the as-of day), none for a feature that did not."""

import duckdb
import pytest

from tests.unit.test_report import AS_OF, DAYS, EVIL, build, make_warehouse, numbers, parse


def current_shares(day_index: int) -> list[float]:
    """The hand-set shares of day ``day_index`` (drifting towards the last bin)."""
    shift = 0.02 * day_index
    return [0.3 - shift, 0.4, 0.3 + shift]


REFERENCE_SHARES = [0.3, 0.4, 0.3]


def with_bin_shares(path):
    """marts.feature_drift_bins as dbt builds it: one row per day, model, version, feature and bin; the rows are
    inserted last bin first, so the report must order by bin_order."""
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "CREATE TABLE marts.feature_drift_bins (date DATE, model_id VARCHAR, model_version VARCHAR, "
            "feature VARCHAR, feature_type VARCHAR, bin VARCHAR, bin_label VARCHAR, bin_order BIGINT, "
            "reference_count BIGINT, current_count BIGINT, reference_share DOUBLE, current_share DOUBLE)"
        )
        models = [r[0] for r in conn.execute("SELECT DISTINCT model_id FROM marts.feature_drift_daily").fetchall()]
        rows = [
            (day, m, "v1", f, "categorical", label, label, order, 0, 0, REFERENCE_SHARES[order], current[order])
            for i, day in enumerate(DAYS)
            for current in [current_shares(i)]
            for m in models
            for f in ("f1", "f2")
            for order, label in reversed(list(enumerate(["0", "1", "2"])))
        ]
        conn.executemany("INSERT INTO marts.feature_drift_bins VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def drift_plots(report) -> list[str]:
    return [p for p in report.plots if p.startswith("drift-")]


def test_an_alerted_feature_shows_its_reference_and_current_distribution(tmp_path):
    report = build(with_bin_shares(make_warehouse(tmp_path / "w.duckdb")))
    page = parse(report.html)
    # only f2 of the alerting model raised PSI alerts (03-08 .. 03-11; 03-11 is after the as-of day)
    [name] = drift_plots(report)
    assert "f2" in name and "f1" not in name and "churn" not in name
    bars = {t["name"]: t for t in page.figures[name]["data"]}
    assert numbers(bars["reference window"]["y"]) == [0.3, 0.4, 0.3]
    newest = DAYS.index(AS_OF)
    assert numbers(bars[AS_OF.isoformat()]["y"]) == current_shares(newest)
    assert bars["reference window"]["x"] == ["0", "1", "2"]
    assert page.summary["models"][EVIL]["drifted_features"]["f2"] == {
        "date": AS_OF.isoformat(),
        "psi": 0.4,
        "model_version": "v1",
        "pool_days": 1,
    }
    assert "Distribution of f2: reference window vs 2026-03-10" in report.html


def test_no_alert_no_distribution_and_a_mart_without_bin_shares_is_named(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb")
    report = build(path)  # the drift mart has no bin-share columns
    assert drift_plots(report) == []
    assert "publishes no bin shares (bin_labels, reference_shares, current_shares)" in report.html
    with_bin_shares(path)
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM marts.alerts WHERE metric = 'psi'")
    quiet = build(path)
    assert drift_plots(quiet) == [] and "Distribution of" not in quiet.html


def test_day_axes_tick_whole_days_and_show_a_single_day_with_a_day_either_side():
    from orchestration.lib import report_figures as rf

    fig = rf.new_figure(1, 2)
    week = [f"2026-09-{d:02d}" for d in range(16, 24)]  # 8 days: plotly alone labels 12-hour steps
    rf.line(fig, week, list(range(8)), "a", rf.COLORS[0], 1, 1)
    rf.line(fig, ["2026-09-23"], [0.5], "b", rf.COLORS[1], 1, 2)
    layout = rf.done(fig)["layout"]
    assert (layout["xaxis"]["dtick"], layout["xaxis"]["tickformat"]) == (86_400_000, "%b %d")
    assert layout["xaxis2"]["range"] == ["2026-09-22", "2026-09-24"]
    single = [t for t in rf.done(fig)["data"] if t["name"] == "b"][0]
    assert "markers" in single["mode"]  # one day is drawn as a point, not an invisible line
    month = rf.new_figure()
    rf.line(month, [f"2026-10-{d:02d}" for d in range(1, 32)], [1.0] * 31, "c", rf.COLORS[0])
    assert rf.done(month)["layout"]["xaxis"]["dtick"] == 4 * 86_400_000  # 30 days / 8 ticks -> every 4th day


def test_an_alert_judged_on_its_pool_shows_the_pooled_distribution_and_psi(tmp_path):
    # a trial's heading said the day's PSI 0.572 beside an alert of 0.8273 "pooled over the version's last 9 days"
    import numpy as np

    path = with_bin_shares(make_warehouse(tmp_path / "w.duckdb"))
    newest = DAYS.index(AS_OF)
    counts = {i: [5 + 2 * i, 20, 9 + i] for i in range(len(DAYS))}  # each day's bin counts, by hand
    pool = np.array([counts[i] for i in range(newest - 2, newest + 1)]).sum(axis=0)  # the 3 days to AS_OF
    shares = pool / pool.sum()
    psi = float(np.sum((shares - np.array(REFERENCE_SHARES)) * np.log(shares / np.array(REFERENCE_SHARES))))
    with duckdb.connect(str(path)) as conn:
        for i, day_counts in counts.items():
            for order, count in enumerate(day_counts):
                conn.execute(
                    "UPDATE marts.feature_drift_bins SET current_count = ? WHERE date = ? AND bin_order = ?",
                    [count, DAYS[i], order],
                )
        conn.execute("ALTER TABLE marts.feature_drift_daily ADD COLUMN pooled_psi DOUBLE")
        conn.execute("UPDATE marts.feature_drift_daily SET pooled_psi = ? WHERE date = ?", [psi, AS_OF])
        conn.execute(
            "UPDATE marts.alerts SET rule = '> 0.2, pooled over the version''s last 3 days (too few values on "
            "the day)' WHERE metric = 'psi'"
        )
    report = build(path)
    [name] = drift_plots(report)
    bars = {t["name"]: t for t in parse(report.html).figures[name]["data"]}
    first = DAYS[newest - 2].isoformat()
    assert numbers(bars[f"{first} .. {AS_OF}"]["y"]) == pytest.approx(list(shares))
    assert numbers(bars["reference window"]["y"]) == REFERENCE_SHARES
    assert (
        f"Distribution of f2: reference window vs {first} .. {AS_OF} (pooled over the version's last 3 days, "
        f"{pool.sum()} values; PSI {psi:.3f}" in report.html
    )
    assert parse(report.html).summary["models"][EVIL]["drifted_features"]["f2"]["pool_days"] == 3


def test_an_alert_days_apart_from_its_earlier_days_is_a_row_of_its_own(tmp_path):
    # a chance PSI alert days before a real drift is another episode (more than 7 days apart), not one span
    path = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "INSERT INTO marts.alerts SELECT * REPLACE (DATE '2026-02-20' AS date) FROM marts.alerts "
            "WHERE metric = 'psi' AND subject = 'f2' ORDER BY date LIMIT 1"
        )
    rows = [r for r in parse(build(path).html).summary["alerts"] if r["subject"] == "f2"]
    assert [(r["first_date"], r["last_date"], r["days"]) for r in rows] == [
        ("2026-02-20", "2026-02-20", 1),
        ("2026-03-08", AS_OF.isoformat(), 3),
    ]
    assert [r["active"] for r in rows] == [False, True]
