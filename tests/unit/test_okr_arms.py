"""Key results on a model whose experiment has two treatment arms (class_size_g1: control 'regular', arms 'small'
and 'regular+aide', of different sizes) beside a single-arm model, through the real experiment_results and
model_impact: a net value or lift key result reads the arm it names; naming none is an error; the single-arm
model's key results read what they always did. Expected values are computed from the per-unit rows by hand."""

import datetime as dt
import math
import textwrap
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.lib.attribution import experiment_results, model_impact
from orchestration import runs
from orchestration.lib.okrs import (
    OkrConfigError,
    check_before_loading,
    key_result_values,
    load_okrs,
    metric_value_query,
    okr_progress,
)
from orchestration.lib.scorecard import metric_scorecard
from tests.unit.test_attribution_honest import DECLARED, _arm_row
from tests.unit.test_okrs import kr

DAYS = [d.date() for d in pd.date_range("2026-09-01", periods=5)]
METRIC = "revenue_per_user"
# experiment -> (model, control, {variant: (planted revenue lift, cumulative units per day)})
EXPERIMENTS = {
    "class_size_g1": (
        "class_size",
        "regular",
        {
            "regular": (0.0, [200, 400, 600, 800, 1000]),
            "small": (1.5, [300, 500, 700, 800, 900]),  # the larger arm on days 1-3 ...
            "regular+aide": (0.2, [200, 400, 600, 900, 1100]),  # ... this one on days 4-5
        },
    ),
    "e1": ("m1", "holdout", {"holdout": (0.0, [100, 200, 300, 400, 500]), "treatment": (1.0, [900] * 5)}),
}
COST_PER_DAY = 50.0  # each model's cumulative cost is 50 x the day's number


def _units() -> dict:
    """(experiment, variant, day) -> the revenue of each unit counted by that day."""
    rng = np.random.default_rng(43)
    return {
        (e, v, day): rng.gamma(2.0, 5.0, n[i]) + lift
        for e, (_, _, arms) in EXPERIMENTS.items()
        for v, (lift, n) in arms.items()
        for i, day in enumerate(DAYS)
    }


@pytest.fixture
def warehouse():
    units = _units()
    stats = pd.DataFrame(
        [
            _arm_row(e, v, METRIC, y) | {"as_of_date": day, "is_control": v == EXPERIMENTS[e][1]}
            for (e, v, day), y in units.items()
        ]
    )
    experiments = pd.DataFrame(
        [
            {"experiment_id": e, "model_id": m, "control_variant": c, "start_date": DAYS[0]}
            for e, (m, c, _) in EXPERIMENTS.items()
        ]
    )
    variants = pd.DataFrame(
        [
            {"experiment_id": e, "variant": v, "expected_share": 1 / len(a)}
            for e, (_, _, a) in EXPERIMENTS.items()
            for v in a
        ]
    )
    costs = pd.DataFrame(
        [
            {
                "model_id": m,
                "experiment_id": e,
                "analysis_window": "cumulative",
                "as_of_date": d,
                "model_cost": COST_PER_DAY * i,
            }
            for e, (m, _, _) in EXPERIMENTS.items()
            for i, d in enumerate(DAYS, start=1)
        ]
    )
    results = experiment_results(stats, experiments, variants, DECLARED)
    impact = model_impact(results, stats, costs, METRIC)
    with duckdb.connect() as conn:
        for schema in ("attribution", "staging"):
            conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute("CREATE TABLE attribution.experiment_results AS SELECT * FROM results")
        conn.execute("CREATE TABLE attribution.model_impact AS SELECT * FROM impact")
        conn.execute("CREATE TABLE staging.stg_experiments AS SELECT * FROM experiments")
        conn.execute("CREATE TABLE staging.stg_experiment_variants AS SELECT * FROM variants")
        yield SimpleNamespace(
            conn=conn, units=units, experiments=experiments, variants=variants, results=results, stats=stats
        )


def _by_hand(units: dict, experiment: str, arm: str) -> tuple[list[float], list[float]]:
    """An arm's net value (mean revenue difference x its units, minus its share of the cost by treated units) and
    relative lift (mean_t / mean_c - 1; no covariate, so no CUPED) per day, from the per-unit revenue."""
    _, control, arms = EXPERIMENTS[experiment]
    net, lift = [], []
    for i, day in enumerate(DAYS, start=1):
        c, t = units[(experiment, control, day)], units[(experiment, arm, day)]
        treated = sum(len(units[(experiment, v, day)]) for v in arms if v != control)
        net.append((t.mean() - c.mean()) * len(t) - COST_PER_DAY * i * len(t) / treated)
        lift.append(t.mean() / c.mean() - 1)
    return net, lift


def _query(conn, k) -> list[float]:
    sql, params = metric_value_query(k, DAYS[0], DAYS[-1])
    return conn.execute(sql, params).df()["current_value"].tolist()


def test_without_an_arm_the_value_query_takes_each_days_larger_arm(warehouse):
    """What a key result on class_size read before it had to name an arm: neither the sum of the arms nor one arm,
    but each day the arm with the most treated units (small on days 1-3, regular+aide after), a line that jumps
    from one arm to the other."""
    conn, units = warehouse.conn, warehouse.units
    small, aide = _by_hand(units, "class_size_g1", "small"), _by_hand(units, "class_size_g1", "regular+aide")
    for i, kind, metric in ((0, "net_value", "net_value"), (1, "lift", METRIC)):
        got = _query(conn, kr(kind=kind, metric=metric, model_id="class_size"))
        assert got == pytest.approx(small[i][:3] + aide[i][3:], rel=1e-9)


def _okrs_text(*bindings: str, start: str = "2026-09-01", targets: tuple = ()) -> str:
    """The `objectives:` of one objective with a key result per binding (id kr1, kr2, ...; baseline 0, target
    1000 unless ``targets`` gives it)."""
    key_results = "".join(
        f"- id: kr{i}\n  metric: {b}\n  baseline: 0\n  target: {targets[i - 1] if targets else 1000}\n"
        for i, b in enumerate(bindings, start=1)
    )
    return (
        f"objectives:\n  - id: classes\n    start_date: {start}\n    deadline: 2026-12-31\n    key_results:\n"
        + textwrap.indent(key_results, " " * 6)
    )


def _okrs(tmp_path, *bindings: str, **fields):
    """An OKR file of _okrs_text, loaded."""
    path = tmp_path / "okrs.yml"
    path.write_text(_okrs_text(*bindings, **fields))
    return load_okrs(DECLARED, path)


def _values(warehouse, okrs) -> dict[str, list[float]]:
    values = key_result_values(warehouse.conn, okrs, DAYS[0], DAYS[-1])
    return {k: rows.sort_values("date")["current_value"].tolist() for k, rows in values.groupby("key_result")}


def test_a_key_result_naming_an_arm_reads_that_arm_and_a_single_arm_model_reads_as_before(warehouse, tmp_path):
    okrs = _okrs(
        tmp_path,
        "{kind: net_value, model: class_size, variant: small}",
        "{kind: net_value, model: class_size, variant: regular+aide}",
        f"{{kind: lift, model: class_size, metric: {METRIC}, variant: small}}",
        f"{{kind: lift, model: class_size, metric: {METRIC}, variant: regular+aide, experiment: class_size_g1}}",
        "{kind: net_value, model: m1}",  # the only arm: no variant needed ...
        "{kind: net_value, model: m1, variant: treatment}",  # ... and naming it changes nothing
        f"{{kind: lift, model: m1, metric: {METRIC}}}",
    )
    got = _values(warehouse, okrs)
    (small_net, small_lift), (aide_net, aide_lift), (m1_net, m1_lift) = (
        _by_hand(warehouse.units, e, arm)
        for e, arm in (("class_size_g1", "small"), ("class_size_g1", "regular+aide"), ("e1", "treatment"))
    )
    expected = [small_net, aide_net, small_lift, aide_lift, m1_net, m1_net, m1_lift]
    for i, want in enumerate(expected, start=1):
        assert got[f"kr{i}"] == pytest.approx(want, rel=1e-9), f"kr{i}"
    # a single-arm model's key result without a variant reads with the query it always had (no arm filter)
    assert "treatment_variant = ?" not in metric_value_query(okrs.key_results[4], DAYS[0], DAYS[-1])[0]

    progress = okr_progress(okrs, key_result_values(warehouse.conn, okrs, DAYS[-1], DAYS[-1])).set_index("key_result")
    assert progress.loc["kr1", "model_id"] == "class_size"
    assert progress.loc["kr1", "progress"] == pytest.approx(small_net[-1] / 1000)
    assert progress.loc["kr2", "progress"] == pytest.approx(aide_net[-1] / 1000)


@pytest.mark.parametrize("kind", ["net_value", "lift"])
def test_a_key_result_on_a_model_with_two_arms_must_name_one_of_them(warehouse, tmp_path, kind):
    binding = f"kind: {kind}, model: class_size" + (f", metric: {METRIC}" if kind == "lift" else "")
    arms = r"class_size_g1: regular\+aide, small \(control regular\)"
    with pytest.raises(
        OkrConfigError,
        match=rf"okrs.yml: objective 'classes' key result 'kr1': field 'metric.variant' is required: .*{arms}",
    ):
        _values(warehouse, _okrs(tmp_path, f"{{{binding}}}"))
    for other in ("large", "regular"):  # not an arm, or the control
        with pytest.raises(
            OkrConfigError, match=rf"'metric.variant': '{other}' is not a treatment arm of model class_size \({arms}\)"
        ):
            _values(warehouse, _okrs(tmp_path, f"{{{binding}, variant: {other}}}"))
    with pytest.raises(OkrConfigError, match="field 'metric.variant': 3 is not a treatment arm's name"):
        _okrs(tmp_path, f"{{{binding}, variant: 3}}")


def test_the_scorecard_binds_a_lift_key_result_to_the_arm_it_names(warehouse, tmp_path):
    okrs = _okrs(tmp_path, f"{{kind: lift, model: class_size, metric: {METRIC}, variant: regular+aide}}")
    card = metric_scorecard(
        DAYS[-1:],
        warehouse.experiments,
        warehouse.variants,
        warehouse.results,
        warehouse.stats,
        pd.DataFrame(columns=["experiment_id", "variant", "metric", "as_of_date", "n", "units_per_day"]),
        {METRIC: DECLARED[METRIC]},
        okrs.key_results,
        0.05,
        0.8,
    )
    arms = card[card["model_id"] == "class_size"].set_index("treatment_variant")
    assert arms["key_result"].fillna("").to_dict() == {"regular+aide": "kr1", "small": ""}
    assert arms.loc["regular+aide", "required_units"] > 0


AFTER = [DAYS[-1] + dt.timedelta(days=i) for i in (1, 2, 3)]  # days after the experiments' data ends
BEFORE = [DAYS[0] - dt.timedelta(days=i) for i in (2, 1)]  # days before it starts
REASON = "pre-period covariate imbalanced: sessions 3.1 (regular) vs 4.2 (small), t-test p = 1e-05"


def _trusted(conn, untrusted: str = "false") -> None:
    """The world's rows trustworthy (its arms' unequal sizes fail the sample ratio test) and decision-grade (its
    arms are small) except where ``untrusted`` (SQL over treatment_variant and as_of_date) holds: those fail the
    covariate balance check (REASON)."""
    for table in ("attribution.model_impact", "attribution.experiment_results"):
        conn.execute(
            f"UPDATE {table} SET trustworthy = NOT ({untrusted}), decision_grade = true, "
            f"untrusted_reason = CASE WHEN {untrusted} THEN ? END",
            [REASON],
        )


def _progress(warehouse, okrs) -> dict:
    """(key result, day) -> its okr_progress row, over the days before, of and after the experiments' data (a
    NULL is None or NaN, as pandas has it)."""
    rows = okr_progress(okrs, key_result_values(warehouse.conn, okrs, BEFORE[0], AFTER[-1]))
    return {(r["key_result"], r["date"]): r for r in rows.to_dict("records")}


def test_after_the_data_ends_a_net_value_or_lift_carries_its_final_value_and_says_how_old(warehouse, tmp_path):
    """The model's value at the experiment's end is its final answer: the days after it keep it (value_as_of the
    last day with data), not no_data; before any value there is none; a KPI's trailing mean is not carried."""
    conn = warehouse.conn
    _trusted(conn)
    conn.execute("CREATE SCHEMA marts")
    conn.execute("CREATE TABLE marts.kpi_daily (date DATE, revenue DOUBLE)")
    conn.executemany("INSERT INTO marts.kpi_daily VALUES (?, ?)", [(d, 100.0 + i) for i, d in enumerate(DAYS)])
    small_net, _ = _by_hand(warehouse.units, "class_size_g1", "small")
    _, aide_lift = _by_hand(warehouse.units, "class_size_g1", "regular+aide")
    m1_net, _ = _by_hand(warehouse.units, "e1", "treatment")
    assert small_net[-1] > 1000 and 0.5 > aide_lift[-1] > 0  # what the targets below make of them
    okrs = _okrs(
        tmp_path,
        "{kind: net_value, model: class_size, variant: small}",  # target 1000: achieved
        f"{{kind: lift, model: class_size, metric: {METRIC}, variant: regular+aide}}",  # target 0.5
        "{kind: net_value, model: m1}",  # its experiment's only arm, named in the rows
        "{kind: kpi, name: revenue}\n  window_days: 1",
        start=BEFORE[0].isoformat(),
        targets=(1000, 0.5, 1e6, 200),
    )
    got = _progress(warehouse, okrs)
    for day in BEFORE:  # no value yet: no_data, nothing to date
        for k in ("kr1", "kr2", "kr3", "kr4"):
            r = got[(k, day)]
            assert math.isnan(r["current_value"]) and r["status"] == "no_data"
            assert pd.isna(r["value_as_of"]) and pd.isna(r["treatment_variant"]) and pd.isna(r["trustworthy"])
    for i, day in enumerate(DAYS + AFTER):
        last = min(i, len(DAYS) - 1)  # the newest day with data up to this one
        small, aide, m1 = got[("kr1", day)], got[("kr2", day)], got[("kr3", day)]
        assert small["current_value"] == pytest.approx(small_net[last], rel=1e-9)
        assert aide["current_value"] == pytest.approx(aide_lift[last], rel=1e-9)
        assert aide["progress"] == pytest.approx(aide_lift[last] / 0.5, rel=1e-9)
        assert m1["current_value"] == pytest.approx(m1_net[last], rel=1e-9)
        for r, arm in ((small, "small"), (aide, "regular+aide"), (m1, "treatment")):
            assert (r["value_as_of"], r["treatment_variant"], r["trustworthy"]) == (DAYS[last], arm, True)
        kpi = got[("kr4", day)]
        if day in DAYS:  # a trailing mean of one day: that day's revenue
            assert (kpi["current_value"], kpi["value_as_of"]) == (100.0 + i, day)
            assert pd.isna(kpi["treatment_variant"]) and pd.isna(kpi["trustworthy"])
        else:
            assert math.isnan(kpi["current_value"]) and kpi["status"] == "no_data"
    for day in AFTER:
        assert got[("kr1", day)]["status"] == "achieved"
        assert got[("kr2", day)]["status"] in ("on_track", "behind")


def test_an_achieved_key_result_on_an_untrustworthy_row_keeps_its_status_and_says_why(warehouse, tmp_path):
    """The net value of 'small' on the last day fails the covariate balance check: achieved from then on (the
    carried days too), trustworthy false with the row's reason; the day before, and the other arm, trustworthy."""
    _trusted(warehouse.conn, f"treatment_variant = 'small' AND as_of_date = DATE '{DAYS[-1]}'")
    small_net, _ = _by_hand(warehouse.units, "class_size_g1", "small")
    aide_net, _ = _by_hand(warehouse.units, "class_size_g1", "regular+aide")
    target = small_net[-2] / 2  # reached the day before and on the last day
    assert small_net[-1] >= target and aide_net[-1] < target
    okrs = _okrs(
        tmp_path,
        "{kind: net_value, model: class_size, variant: small}",
        "{kind: net_value, model: class_size, variant: regular+aide}",
        targets=(target, target),
    )
    got = _progress(warehouse, okrs)
    before = got[("kr1", DAYS[-2])]
    assert (before["status"], before["trustworthy"]) == ("achieved", True) and pd.isna(before["untrusted_reason"])
    for day in (DAYS[-1], *AFTER):
        r = got[("kr1", day)]
        assert (r["status"], r["trustworthy"], r["untrusted_reason"]) == ("achieved", False, REASON)
        assert got[("kr2", day)]["trustworthy"] is True


def _project(tmp_path, monkeypatch, okrs_text: str) -> None:
    config = tmp_path / "impact_ledger.yml"
    config.write_text("okrs:\n" + textwrap.indent(okrs_text, "  "))
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))


def test_a_misspelt_kpi_fails_the_run_before_it_starts(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch, _okrs_text("{kind: kpi, name: revenu}"))
    monkeypatch.setattr(runs, "load_job", lambda name: pytest.fail("the run started"))
    outcome = runs.materialize_days(DAYS[0], DAYS[-1])
    assert not outcome.success and outcome.materialized == []
    (failure,) = outcome.failures
    assert "key result 'kr1': field 'metric.name': 'revenu' is not a column of marts.kpi_daily" in failure


def test_a_two_arm_model_without_a_variant_fails_once_the_experiments_are_loaded(warehouse, tmp_path, monkeypatch):
    """At raw.experiment_variants (the run's first tables), with the message the okr_progress step would give."""
    _project(tmp_path, monkeypatch, _okrs_text("{kind: net_value, model: class_size}"))
    conn = warehouse.conn
    conn.execute("CREATE SCHEMA raw")
    conn.register("experiments", warehouse.experiments)
    conn.register("variants", warehouse.variants)
    conn.execute("CREATE TABLE raw.experiments AS SELECT *, NULL::DATE AS end_date FROM experiments")
    conn.execute("CREATE TABLE raw.experiment_variants AS SELECT * FROM variants")
    assert len(check_before_loading().key_results) == 1  # the file alone is fine
    with pytest.raises(OkrConfigError, match="'metric.variant' is required") as early:
        check_before_loading(conn)
    with pytest.raises(OkrConfigError) as late:
        key_result_values(conn, check_before_loading(), DAYS[0], DAYS[-1])
    assert str(early.value) == str(late.value)
