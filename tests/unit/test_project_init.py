"""`impact-ledger init`: what it infers from a landing zone, checked against numpy / hand computation."""

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from orchestration.cli import main
from orchestration.lib.notify import load_notify_config
from orchestration.lib.project_config import Rule, parse_config
from orchestration.lib.contract import ContractError
from orchestration.lib.project_init import InitError, describe, infer, render, review

START = datetime(2025, 1, 6)


def _positive_a_day_later(preds: pd.DataFrame) -> pd.DataFrame:
    """A positive implicit label for each of ``preds``, landed a day after its prediction."""
    return pd.DataFrame(
        {
            "prediction_id": preds["prediction_id"],
            "label": 1,
            "labeled_at": preds["predicted_at"] + timedelta(days=1),
            "label_source": "implicit",
        }
    )


def _write(source: Path, name: str, frame: pd.DataFrame, fmt: str = "csv", file: str | None = None) -> None:
    (source / name).mkdir(parents=True, exist_ok=True)
    path = source / name / f"{file or name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


@pytest.fixture
def zone(tmp_path):
    """Two models (one behind an experiment), labels a few days to weeks late, a users table with attributes."""
    rng = np.random.default_rng(5)
    source = tmp_path / "zone"
    n_users = 300
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_users)],
            "signup_at": [START - timedelta(days=int(d)) for d in rng.integers(1, 100, n_users)],
            "gender": rng.choice(["f", "m", "x"], n_users),
            "segment": rng.choice(["new", "loyal"], n_users),
            "city": [f"city{i}" for i in range(n_users)],  # one value per user: not a group
            "subtype": [f"t{i % 25}" for i in range(n_users)],  # 25 groups of 12 users: listed, not proposed
            "age": rng.integers(18, 80, n_users),  # protected name, too many values
            "plan": "basic",  # one value: nothing to compare
        }
    )
    _write(source, "users", users)
    rows = []
    # model a: 20 a day on days 0..9 except day 4 (0 rows); model b: 5 a day on days 0..9
    for day in range(10):
        for model, per_day in (("a", 0 if day == 4 else 20), ("b", 5)):
            for k in range(per_day):
                rows.append(
                    (
                        f"{model}-{day}-{k}",
                        model,
                        "v1" if day < 5 else "v2",
                        f"u{k}",
                        START + timedelta(days=day, hours=int(rng.integers(0, 23))),
                        float(rng.random()),
                        0.4 if model == "a" else (0.6 if k % 2 else 0.7),
                    )
                )
    preds = pd.DataFrame(
        rows, columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"]
    )
    _write(source, "predictions", preds, "parquet")
    labelled = preds.sample(frac=0.8, random_state=1)
    delay_days = rng.exponential(6.0, len(labelled))
    labels = pd.DataFrame(
        {
            "prediction_id": labelled["prediction_id"],
            "label": rng.integers(0, 2, len(labelled)),
            "labeled_at": labelled["predicted_at"] + pd.to_timedelta(delay_days, unit="D"),
            "label_source": "implicit",
        }
    )
    # a second, later label of some predictions: the first one says when the outcome was known
    again = labels.head(30).assign(
        labeled_at=lambda f: f["labeled_at"] + pd.Timedelta(days=400), label_source="human_review"
    )
    _write(source, "labels", pd.concat([labels, again]))
    _write(
        source,
        "experiments",
        pd.DataFrame(
            {
                "experiment_id": ["e1"],
                "model_id": ["a"],
                "control_variant": ["c"],
                "start_date": ["2025-01-06"],
                "end_date": [None],
            }
        ),
    )
    return source, users, preds, labels


def test_infers_models_thresholds_and_label_horizons(zone):
    source, _, preds, labels = zone
    inf = infer(source)
    models = {m.model_id: m for m in inf.models}
    assert sorted(models) == ["a", "b"]
    assert models["a"].experiments == ["e1"] and models["b"].experiments == []
    assert models["a"].predictions == 180 and models["b"].predictions == 50
    assert models["a"].versions == 2
    assert models["a"].threshold == 0.4 and models["b"].threshold is None  # b carries two thresholds
    assert sorted(t for t, _ in models["b"].thresholds) == [0.6, 0.7]
    joined = labels.merge(preds[["prediction_id", "model_id", "predicted_at"]], on="prediction_id")
    for model_id, g in joined.groupby("model_id"):
        delay = (g["labeled_at"] - g["predicted_at"]).dt.total_seconds() / 86400
        p99 = np.quantile(delay, 0.99)  # numpy's default (linear) = DuckDB's quantile_cont
        m = models[model_id]
        assert m.labelled == len(g)
        assert m.delay_p99_days == pytest.approx(p99, rel=1e-9)
        assert m.delay_max_days == pytest.approx(delay.max(), rel=1e-9)
        assert m.label_horizon_days == math.ceil(p99)
    positive = (preds["score"] >= preds["threshold"]).groupby(preds["model_id"]).mean()
    assert models["b"].positive_rate == pytest.approx(positive["b"])


def test_daily_volumes_count_empty_days(zone):
    source, _, preds, _ = zone
    inf = infer(source)
    p = inf.tables["predictions"]
    per_day = preds.groupby(preds["predicted_at"].dt.date).size()
    assert p.first_day == date(2025, 1, 6) and p.last_day == date(2025, 1, 15) and p.days == 10
    assert p.rows == len(preds) and p.daily_max == per_day.max() and p.daily_min == per_day.min()
    assert p.daily_median == float(np.median(per_day.to_numpy()))
    model_a = next(m for m in inf.models if m.model_id == "a")
    assert model_a.daily_median == 20.0  # nine days of 20 and one of 0
    assert inf.first_day == date(2025, 1, 6)


def test_protected_attribute_candidates(zone):
    source, users, _, _ = zone
    inf = infer(source)
    by_name = {a.column: a for a in inf.attributes}
    assert inf.proposed_attributes == ["gender"]  # protected name, few groups
    assert by_name["segment"].distinct == 2 and not by_name["segment"].proposed  # a candidate, not proposed
    assert by_name["age"].distinct == users["age"].nunique() and not by_name["age"].proposed  # too many groups
    assert by_name["plan"].distinct == 1 and not by_name["plan"].proposed
    assert "city" not in by_name and "user_id" not in by_name and "signup_at" not in by_name
    assert by_name["subtype"].distinct == 25 and not by_name["subtype"].proposed  # a trial's 40 went unmentioned
    text = render(inf)
    # the header promised "few distinct values" above columns of 596 and 97 (a trial): wide ones are listed too
    assert f"# Candidates ({len(users)} users): columns of few groups can be judged (add one to the list); " in text
    assert "wider ones need a banded column first:" in text and "few distinct values" not in text
    assert "#   age: " in text and "too many groups; add a banded column (e.g. age_band)" in text
    assert "#   plan: a single value: nothing to compare" in text
    assert "#   subtype: 25 groups: more than fairness judges well" in text


def test_the_bias_window_note_counts_no_more_predictions_than_a_short_lived_model_made(zone):
    # init said "a 14-day window holds about 980 predictions" of a model that made 700 in its 10 days
    source, _, preds, _ = zone
    inf = infer(source)
    days = {m: preds[preds["model_id"] == m]["predicted_at"].dt.date.nunique() for m in preds["model_id"].unique()}
    assert all(d < 14 for d in days.values())  # every model of the zone lived fewer days than the window
    smallest = min(len(preds[preds["model_id"] == m]) for m in days)
    assert f"# a 14-day window holds about {smallest} predictions of the smallest model" in render(inf)


def test_a_weekday_only_models_windows_count_its_empty_weekends(tmp_path):
    # a trial's Monday-Friday model (80 a weekday): init said a 14-day window held 1,120 (80 x 14), one held 806;
    # its groups' estimates were inflated alike, so a group under bias.min_labelled read as judged
    source = tmp_path / "zone"
    users = pd.DataFrame(
        {"user_id": [f"u{i}" for i in range(100)], "signup_at": START, "gender": ["f"] * 45 + ["m"] * 55}
    )
    _write(source, "users", users)
    weekdays = [START + timedelta(days=d) for d in range(28) if (START + timedelta(days=d)).weekday() < 5]
    preds = pd.DataFrame(
        [
            (f"p{d:%m%d}-{i}", "m", "v1", f"u{i}", d + timedelta(minutes=i), 0.4, 0.5)
            for d in weekdays
            for i in range(100)
        ],
        columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"],
    )
    _write(source, "predictions", preds)
    labels = preds[["prediction_id"]].assign(labeled_at=preds["predicted_at"] + timedelta(days=1), label=1)
    _write(source, "labels", labels.assign(label_source="implicit"))
    inf = infer(source)
    assert inf.models[0].daily_median == 100  # the median calendar day is a weekday's
    # by hand: any 14 calendar days hold two weekends and 10 weekdays of 100, every prediction labelled: 1,000,
    # f's 45% of them 450 (under 500: named), m's 550 (judged)
    assert "# a 14-day window holds about 1000 predictions of the smallest model" in render(inf)
    [few] = [line for line in review(inf) if "groups under bias.min_labelled" in line]
    assert few.endswith("in a 14-day window, left out of the label-based verdicts: users.gender: f (~450)")
    # the 7-day PSI pool holds 5 weekdays, 500 values (>= 200): the default pool, none of its own
    assert "psi" not in parse_config(yaml.safe_load(render(inf))).models["m"].alerts


def test_groups_too_small_for_disparate_impact_are_named_as_those_under_min_labelled_are(tmp_path):
    # a trial's age band 45+ (71 predictions in a window, never offered enrolment: 0 against 97%) was left out of
    # every fairness verdict, and init named only the groups under bias.min_labelled
    source = tmp_path / "zone"
    bands = ["18-29"] * 60 + ["30-44"] * 35 + ["45+"] * 5
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": START, "age": bands}))
    days = [START + timedelta(days=d) for d in range(28)]
    preds = pd.DataFrame(
        [(f"p{d:%m%d}-{i}", "m", "v1", f"u{i}", d + timedelta(minutes=i), 0.4, 0.5) for d in days for i in range(100)],
        columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"],
    )
    _write(source, "predictions", preds)
    inf = infer(source)
    # by hand: a 14-day window holds 1,400 predictions; 45+ has 5% of them (70), under min_predictions (100)
    [few] = [line for line in review(inf) if "groups under bias.min_predictions" in line]
    assert few == (
        "models.m: groups under bias.min_predictions (100 predictions) in a 14-day window, left out of disparate "
        "impact too (lower it to judge them: the verdicts allow for the noise of small groups): users.age: 45+ (~70)"
    )


def test_the_horizon_that_keeps_every_label_counts_calendar_days_as_the_marts_do(zone):
    # a label counts until the end of its prediction's day + the horizon: init said "22 keeps them all" for a
    # 21.04-day delay (10:00 -> 11:00 21 days later), which 21 keeps
    source, _, preds, _ = zone
    first = preds[preds["model_id"] == "a"].iloc[0]
    predicted = pd.Timestamp(first["predicted_at"]).normalize() + pd.Timedelta(hours=10)
    late = pd.DataFrame(
        {
            "prediction_id": ["late-1"],
            "model_id": "a",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": [predicted],
            "score": 0.5,
            "threshold": 0.4,
        }
    )
    _write(source, "predictions", pd.concat([preds, late]), "parquet")
    labels = pd.read_csv(source / "labels" / "labels.csv", parse_dates=["labeled_at"])
    when = labels.merge(preds[["prediction_id", "predicted_at"]], on="prediction_id")
    labels = labels[
        labels["prediction_id"].isin(
            when.loc[when["labeled_at"] - when["predicted_at"] < pd.Timedelta(days=9), "prediction_id"]
        )
    ]
    at = predicted + pd.Timedelta(days=21, hours=1)  # 21.04 days later, on the 21st calendar day
    _write(
        source,
        "labels",
        pd.concat(
            [
                labels,
                pd.DataFrame(
                    {"prediction_id": ["late-1"], "label": [1], "labeled_at": [at], "label_source": "implicit"}
                ),
            ]
        ),
    )
    inf = infer(source)
    a = next(m for m in inf.models if m.model_id == "a")
    assert a.delay_max_days > 21 and a.delay_max_calendar_days == 21 and a.label_horizon_days < 21
    assert "(labels later than the horizon are not counted: 21 keeps them all)" in render(inf)


def test_a_candidate_columns_nulls_are_said_as_the_unknown_group_they_become(zone):
    # a trial: "nwhite: 2 distinct value(s)", and 3 users without a value became a third group, 'unknown'
    source, users, _, _ = zone
    _write(source, "users", users.assign(gender=[None] * 3 + list(users["gender"][3:])))
    lines = describe(infer(source))
    assert any(
        line.startswith("  users.gender: 3 distinct value(s)") and ", 3 null (an 'unknown' group)" in line
        for line in lines
    ), lines
    assert not any("segment" in line and "null" in line for line in lines)


def test_colour_and_citizenship_are_protected_names(zone):
    # a trial's arrests data: `colour` (a race proxy) and `citizen` only commented out, `sex` proposed
    source, users, _, _ = zone
    rng = np.random.default_rng(5)
    _write(
        source,
        "users",
        users.assign(colour=rng.choice(["Black", "White"], len(users)), citizen=rng.choice(["Yes", "No"], len(users))),
    )
    assert infer(source).proposed_attributes == ["citizen", "colour", "gender"]


def test_a_protected_column_of_one_value_is_nothing_to_compare_not_too_many_groups(zone):
    # a landing zone of men only: "gender: 1 distinct values: too many groups; add a banded column"
    source, users, _, _ = zone
    _write(source, "users", users.assign(gender="m"))
    text = render(infer(source))
    assert "#   gender: a single value: nothing to compare" in text and "gender_band" not in text


def test_a_protected_column_the_scored_users_do_not_differ_in_is_not_proposed(zone):
    # `race` recorded only for users the models never scored: proposed, its verdicts "not assessed" forever
    source, users, preds, _ = zone
    scored = set(preds["user_id"])
    users = users.assign(
        race=[("a" if i % 2 else "b") if u not in scored else None for i, u in enumerate(users["user_id"])]
    )
    _write(source, "users", users)
    by_name = {a.column: a for a in infer(source).attributes}
    assert by_name["race"].distinct == 2 and by_name["race"].scored_distinct == 0  # by hand: all scored are null
    assert not by_name["race"].proposed and by_name["gender"].proposed
    assert by_name["gender"].scored_distinct == users[users["user_id"].isin(scored)]["gender"].nunique()


def test_written_config_validates_and_says_what_it_inferred(zone):
    source, _, _, _ = zone
    inf = infer(source)
    text = render(inf)
    cfg = parse_config(yaml.safe_load(text))
    assert cfg.partitions.start == date(2025, 1, 6)
    assert set(cfg.models) == {"a", "b"}
    assert cfg.models["a"].experiment is True and cfg.models["b"].experiment is False
    assert cfg.models["a"].threshold == 0.4 and cfg.models["b"].threshold is None
    assert all(m.positive_decision == "favourable" for m in cfg.models.values())  # left for review
    assert cfg.models["a"].label_horizon_days == next(m.label_horizon_days for m in inf.models if m.model_id == "a")
    assert cfg.protected_attributes == ["gender"]
    assert "REVIEW" in text and "harmful" in text and "#   segment: 2 groups" in text
    # editing the one line the README tells risk-score owners to edit keeps the file valid
    edited = text.replace("positive_decision: favourable", "positive_decision: harmful", 1)
    assert parse_config(yaml.safe_load(edited)).models["a"].positive_decision == "harmful"


def test_no_thresholds_means_half(tmp_path):
    source = tmp_path / "zone"
    _write(
        source,
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": ["p1", "p2"],
                "model_id": "m",
                "model_version": "1",
                "user_id": "u",
                "predicted_at": ["2025-02-01 10:00", "2025-02-02 10:00"],
                "score": [0.2, 0.9],
            }
        ),
    )
    inf = infer(source)
    assert inf.models[0].threshold == 0.5 and inf.models[0].positive_rate == 0.5
    text = render(inf)
    assert "0.5 is assumed" in text
    assert parse_config(yaml.safe_load(text)).models["m"].threshold == 0.5
    assert inf.models[0].label_horizon_days == 30  # no labels: the default


def test_timestamps_with_offsets_land_on_their_utc_day(tmp_path):
    source = tmp_path / "zone"
    _write(
        source,
        "orders",
        pd.DataFrame(
            {
                "order_id": ["o1", "o2"],
                "user_id": "u",
                "session_id": None,
                "ordered_at": ["2025-03-01T23:30:00-02:00", "2025-03-03T01:00:00+02:00"],
                "revenue": 1.0,
                "status": "completed",
            }
        ),
    )
    t = infer(source).tables["orders"]
    assert (t.first_day, t.last_day) == (date(2025, 3, 2), date(2025, 3, 2))


def test_values_materialize_would_refuse_are_named_before_it_runs_with_what_they_look_like(tmp_path):
    """Epoch numbers for a time and yes/no words for a 0/1 label are common in exports: the loader stops at them
    (the same words from init's review and from materialize), and init does not mistake them for no labels."""
    import duckdb

    from orchestration.lib.raw_loader import load_partition

    source = tmp_path / "zone"
    at = pd.to_datetime(["2025-02-01 10:00", "2025-02-02 11:30"])
    epoch = (at - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    base = {"prediction_id": ["p1", "p2"], "model_id": "m", "model_version": "1", "user_id": "u", "score": [0.2, 0.9]}
    _write(source, "predictions", pd.DataFrame(base | {"predicted_at": epoch}))
    _write(
        source,
        "labels",
        pd.DataFrame({"prediction_id": ["p1", "p2"], "label": ["no", "yes"], "labeled_at": at + pd.Timedelta(days=3)}),
    )
    inf = infer(source)
    said = review(inf)
    epoch_line = next(line for line in said if "'predicted_at'" in line)
    assert "2 value(s) cannot be cast to TIMESTAMP" in epoch_line and str(epoch[0]) in epoch_line
    assert "epoch seconds?" in epoch_line and "materialize stops" in epoch_line
    label_line = next(line for line in said if "'label'" in line)
    assert "labels must be 0 or 1, and 2 value(s) are not: 'no' (1), 'yes' (1)" in label_line
    assert "yes/no or true/false words? write 1 or 0" in label_line
    assert any("no label matched with readable times" in line for line in said)  # labels there, times unreadable
    with duckdb.connect() as conn, pytest.raises(ContractError) as refused:
        load_partition(conn, "predictions", source, date(2025, 2, 1))
    assert str(refused.value) in epoch_line  # init quotes the loader's own error
    # milliseconds are told apart by their length; a readable file has nothing to say
    _write(source, "predictions", pd.DataFrame(base | {"predicted_at": epoch * 1000}))
    assert "epoch milliseconds?" in next(line for line in review(infer(source)) if "'predicted_at'" in line)
    _write(source, "predictions", pd.DataFrame(base | {"predicted_at": at.strftime("%Y-%m-%d %H:%M:%S")}))
    _write(source, "labels", pd.DataFrame({"prediction_id": ["p1"], "label": [1], "labeled_at": [at[0]]}))
    assert not [line for line in review(infer(source)) if "materialize stops" in line]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_labels_written_as_the_outcomes_names_are_named_before_materialize_in_its_words(tmp_path, fmt):
    """Labels holding the brand bought ('MM', 'CH'): init's review says what materialize will stop with."""
    import duckdb

    from orchestration.lib.raw_loader import load_partition

    source = tmp_path / "zone"
    at = pd.to_datetime(["2025-02-01 10:00", "2025-02-01 11:00", "2025-02-01 12:00"])
    ids = ["p1", "p2", "p3"]
    base = {"prediction_id": ids, "model_id": "m", "model_version": "1", "user_id": "u", "score": 0.5}
    _write(source, "predictions", pd.DataFrame(base | {"predicted_at": at}), fmt=fmt)
    frame = {"prediction_id": ids, "label": ["MM", "CH", "MM"], "labeled_at": at + pd.Timedelta(days=1)}
    _write(source, "labels", pd.DataFrame(frame | {"label_source": "implicit"}), fmt=fmt)
    line = next(line for line in review(infer(source)) if "'label'" in line)
    assert "labels must be 0 or 1, and 3 value(s) are not: 'MM' (2), 'CH' (1) (the outcome's names?" in line
    with duckdb.connect() as conn, pytest.raises(ContractError) as refused:
        load_partition(conn, "labels", source, date(2025, 2, 2))
    assert str(refused.value) in line and "materialize stops" in line  # init quotes the loader's own error


def test_a_parquet_day_with_its_time_column_in_epoch_seconds_is_named_as_materialize_names_it(tmp_path):
    """One read of Parquet days whose time column is a TIMESTAMP on one day and epoch seconds (BIGINT) on the next
    stopped at DuckDB's Conversion Error (advising union_by_name, on already): init's review quotes the loader."""
    import duckdb

    from orchestration.lib.raw_loader import load_partition

    source = tmp_path / "zone"
    base = {"model_id": "m", "model_version": "1", "user_id": "u", "score": 0.5}
    days = [pd.to_datetime([f"2026-04-{d} 10:00", f"2026-04-{d} 11:30"]) for d in (20, 21)]
    epoch = (days[1] - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    for day, at in zip((20, 21), (days[0], epoch)):
        frame = pd.DataFrame(base | {"prediction_id": [f"p{day}a", f"p{day}b"], "predicted_at": at})
        _write(source, "predictions", frame, fmt="parquet", file=f"predictions_2026-04-{day}")
    line = next(line for line in review(infer(source)) if "'predicted_at'" in line)
    with duckdb.connect() as conn, pytest.raises(ContractError) as refused:
        load_partition(conn, "predictions", source, date(2026, 4, 21))
    assert str(refused.value) in line and "materialize stops" in line
    assert refused.value.args[0].startswith(f"{source / 'predictions' / 'predictions_2026-04-21.parquet'}: table")
    assert "2 value(s) cannot be cast to TIMESTAMP" in line and str(epoch[0]) in line and "epoch seconds?" in line


def test_scores_or_thresholds_in_another_unit_are_one_line_errors_and_a_few_bad_scores_a_review(tmp_path, capsys):
    """Percent scores (27.7, threshold 30) would have every row quarantined; init says so instead of writing a file
    (the threshold used to fail the written file's own validation with a traceback)."""
    source = tmp_path / "zone"
    base = {
        "prediction_id": [f"p{i}" for i in range(4)],
        "model_id": "m",
        "model_version": "1",
        "user_id": "u",
        "predicted_at": "2025-02-01 10:00",
    }
    _write(source, "predictions", pd.DataFrame(base | {"score": [27.7, 80.0, 4.5, 61.2], "threshold": 30}))
    out = tmp_path / "impact_ledger.yml"
    assert main(["init", "--source", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and not out.exists()
    assert "model 'm': 4 threshold(s) outside [0, 1], e.g. 30" in err and "percentages? divide both by 100" in err
    _write(source, "predictions", pd.DataFrame(base | {"score": [27.7, 80.0, 4.5, 0.3]}))  # no threshold logged
    with pytest.raises(InitError, match=r"model 'm': 3 of 4 scores are outside \[0, 1\] \(the largest 80\)"):
        infer(source)
    _write(source, "predictions", pd.DataFrame(base | {"score": [0.2, 1.5, 0.4, 0.9]}))  # one bad row: quarantined
    assert "models.m: 1 score(s) outside [0, 1]: the loader quarantines those rows" in review(infer(source))


def test_gzip_csv_is_profiled_and_files_no_format_reads_are_named(zone):
    """A gzipped table counts like its CSV; a table folder's unreadable files are named in the review, with what
    materialize does about them (a table with none readable stops it; beside readable files they are left out)."""
    import gzip

    source, users, *_ = zone
    assert infer(source).tables["users"].rows == len(users)
    plain = source / "users" / "users.csv"
    (source / "users" / "users.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    (source / "users" / "users.xlsx").write_bytes(b"PK")
    (source / "orders").mkdir()
    (source / "orders" / "orders.json").write_text("[]")
    inf = infer(source)
    assert inf.tables["users"].rows == len(users) and "orders" not in inf.tables
    said = review(inf)
    assert any(
        line.startswith("1 file(s) of table 'users' not read (users/users.xlsx)") and "left out" in line
        for line in said
    )
    assert any(
        line.startswith("1 file(s) of table 'orders' not read (orders/orders.json)") and "stops" in line
        for line in said
    )


def test_label_coverage_is_judged_when_labels_have_landed_and_against_the_share_that_ever_does(tmp_path, monkeypatch):
    # months-late labels alerted on coverage every day after the default 7 days (a real data set); waiting for
    # them would make every run recompute months (the rule is left off), labels a week or two late are waited
    # for; a model whose flagged predictions alone get labels never reaches the default 0.5
    rng = np.random.default_rng(3)
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(50)], "signup_at": START}))
    preds, labels = [], []
    for model in ("late_outcome", "week_late", "reviewed_if_flagged", "mostly_labelled"):
        for i in range(300):
            at = START + timedelta(days=i // 10, hours=i % 10)
            score = float(rng.random())
            preds.append((f"{model}-{i}", model, "v1", f"u{i % 50}", at, score, 0.5))
            if model == "late_outcome":
                labels.append((f"{model}-{i}", 1, at + timedelta(days=60 + (i * 37) % 61, hours=3)))
            elif model == "week_late":
                labels.append((f"{model}-{i}", 1, at + timedelta(days=6 + i % 7, hours=3)))
            elif score >= 0.7 or (model == "mostly_labelled" and i % 5):
                labels.append((f"{model}-{i}", 1, at + timedelta(days=1)))
    columns = ["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"]
    preds = pd.DataFrame(preds, columns=columns)
    labels = pd.DataFrame(labels, columns=["prediction_id", "label", "labeled_at"])
    _write(source, "predictions", preds)
    _write(source, "labels", labels)

    inference = infer(source)
    config = parse_config(yaml.safe_load(render(inference)))
    delays = (labels["labeled_at"] - labels["prediction_id"].map(preds.set_index("prediction_id")["predicted_at"])) / (
        pd.Timedelta(days=1)
    )
    late = delays[labels["prediction_id"].str.startswith("late")]
    assert math.ceil(np.quantile(late, 0.9)) > 14
    assert config.models["late_outcome"].alerts["label_coverage"] == Rule(below=0)  # off: 90% take ~4 months
    # the comment says what to set to judge it anyway (a trial's predictions never labelled went unsaid)
    wait = math.ceil(np.quantile(late, 0.9))
    assert (
        f"90% of labels arrive only after {wait} days (p90 of the delay; over 14): off (below 0), so predictions "
        f"never labelled go unsaid; to judge it, set after_days: {wait} and below (each run then recomputes {wait} "
        f"days; notify.horizon_days >= {wait + 2})"
    ) in render(inference)
    week = delays[labels["prediction_id"].str.startswith("week")]
    assert config.models["week_late"].alerts["label_coverage"] == Rule(after_days=math.ceil(np.quantile(week, 0.9)))
    written = tmp_path / "impact_ledger.yml"
    written.write_text(render(inference))
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(written))
    # the notifications' horizon reaches the longest label horizon written (alerts on late labels are still sent)
    longest = max(spec.label_horizon_days for spec in config.models.values())
    assert load_notify_config().horizon_days == max(31, longest + 1)
    # a share above the default's 0.5 keeps the default too: only a share under it needs its own floor
    assert "mostly_labelled" not in [m for m, spec in config.models.items() if "label_coverage" in spec.alerts]
    reviewed = config.models["reviewed_if_flagged"].alerts["label_coverage"]
    share = labels["prediction_id"].str.startswith("reviewed").sum() / 300  # every prediction is old enough
    assert reviewed.after_days is None and reviewed.below == math.floor(share / 2 * 100) / 100 and 0.1 < share < 0.5
    said = review(inference)
    assert any(line.startswith("models.late_outcome: median 10 predictions a day: drift (PSI)") for line in said)
    # labels landing later than the retraining window is long: its snapshots hold the early outcomes only
    horizon = config.models["late_outcome"].label_horizon_days
    assert horizon > 28 >= config.models["week_late"].label_horizon_days
    assert (
        f"models.late_outcome: labels land up to {horizon} days after the prediction, more than "
        "retraining.training_window_days (28)"
    ) in " ".join(said)
    assert not any(line.startswith("models.week_late: labels land up to") for line in said)


def _experiment_zone(tmp_path: Path, users: int) -> Path:
    """A landing zone of ``users`` users u0.. and experiment e1 of model m, control arm c."""
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(users)], "signup_at": START}))
    _write(source, "experiments", pd.DataFrame({"experiment_id": ["e1"], "model_id": ["m"], "control_variant": ["c"]}))
    return source


def test_an_experiment_with_an_arm_too_small_for_a_decision_is_named_in_the_review(tmp_path):
    # 32 students (a real data set): nothing said so before the results came out not decision-grade
    source = _experiment_zone(tmp_path, users=60)
    assignments = pd.DataFrame(
        {
            "experiment_id": "e1",
            "user_id": [f"u{i}" for i in range(60)] + ["u0"],  # u0 assigned twice: one user
            "variant": ["c"] * 18 + ["t"] * 42 + ["c"],
            "assigned_at": START,
        }
    )
    _write(source, "assignments", assignments)
    units = assignments.groupby("variant")["user_id"].nunique()
    assert dict(units) == {"c": 18, "t": 42}
    said = review(infer(source))
    assert any(
        line.startswith(f"experiment e1: c {units['c']}, t {units['t']} users assigned; with an arm under 30")
        for line in said
    ), said
    assignments["variant"] = ["c"] * 30 + ["t"] * 30 + ["c"]
    _write(source, "assignments", assignments)
    assert not any(line.startswith("experiment e1") for line in review(infer(source)))


def test_a_misspelt_variant_and_shares_not_summing_to_one_are_named_before_the_first_run(tmp_path):
    # a trial's 56 students assigned 'Small' (declared 'small') and shares summing to 1.02: init said nothing, and
    # materialize held the days back naming neither the variant nor the experiment
    source = _experiment_zone(tmp_path, users=90)
    shares = {"c": 0.5, "small": 0.52}
    _write(
        source,
        "experiment_variants",
        pd.DataFrame({"experiment_id": "e1", "variant": list(shares), "expected_share": list(shares.values())}),
    )
    variants = ["c"] * 40 + ["small"] * 40 + ["Small"] * 10
    assignments = pd.DataFrame(
        {"experiment_id": "e1", "user_id": [f"u{i}" for i in range(90)], "variant": variants, "assigned_at": START}
    )
    _write(source, "assignments", assignments)
    said = review(infer(source))
    total = sum(shares.values())  # 1.02
    assert any(f"expected_share of experiment 'e1' sum to {total:g}, not 1" in line for line in said), said
    [unknown] = [line for line in said if "variant 'Small'" in line]
    assert f"({variants.count('Small')} user(s))" in unknown and "did you mean 'small'?" in unknown
    shares["small"] = 0.5
    _write(
        source,
        "experiment_variants",
        pd.DataFrame({"experiment_id": "e1", "variant": list(shares), "expected_share": list(shares.values())}),
    )
    assignments["variant"] = assignments["variant"].str.lower()
    _write(source, "assignments", assignments)
    assert not any(
        "expected_share" in line or "is not one experiment_variants" in line for line in review(infer(source))
    )
    # the gate's own bounds (its suite file: 0.999 .. 1.001): rounding within them is no problem, beyond them is
    for small, flagged in ((0.5009, False), (0.4991, False), (0.5011, True), (0.4989, True)):
        shares["small"] = small
        _write(
            source,
            "experiment_variants",
            pd.DataFrame({"experiment_id": "e1", "variant": list(shares), "expected_share": list(shares.values())}),
        )
        assert any("expected_share" in line for line in review(infer(source))) == flagged, small


WEEKLY_JUDGED = (
    "each day is judged against the trailing median times its weekday's share of its week in the 3 weeks before "
    "instead "
    "(from the table's fourth week), in the same band"
)


def held_remedy(table: str) -> str:
    """What init's line of days the volume band holds back says to do."""
    return (
        "if that is the data (a last day exported part-way, a wind-down, activity that ended, a holiday), widen that "
        f"table's band (gates.volume.tables.{table}: tolerance, z) or leave days at its end out (a held-back day "
        "makes the experiment results covering it untrustworthy)"
    )


def test_the_days_the_volume_gate_will_hold_back_are_named_before_the_first_run(tmp_path):
    # a time-boxed experiment's last days (and any export's last, part-way day) were held back by the volume
    # gate and the results silently stopped early; 100 sessions a day, then 10 on the day the export was taken
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": START}))
    per_day = [100] * 14 + [10]
    sessions = pd.DataFrame(
        [
            (f"s{day}-{k}", f"u{k % 100}", START + timedelta(days=day, minutes=k))
            for day, n in enumerate(per_day)
            for k in range(n)
        ],
        columns=["session_id", "user_id", "started_at"],
    )
    _write(source, "sessions", sessions)
    # labels with the same drop: their volume and freshness rules only warn, so no day of theirs is held back
    labels = sessions.rename(columns={"session_id": "prediction_id", "started_at": "labeled_at"}).drop(
        columns="user_id"
    )
    _write(source, "labels", labels.assign(label=1, label_source="implicit"))
    last = (START + timedelta(days=14)).date()
    # by hand: its trailing median is 100, the band 100 +- max(0.5 x 100, 4 x sqrt(100)) = [50, 150]: 10 is out
    said = [line for line in review(infer(source)) if line.startswith("gates.volume")]
    assert said == [
        f"gates.volume: the volume gate will hold back 1 day(s) of sessions ({last}): rows far below the trailing "
        f"median; {held_remedy('sessions')}"
    ]
    _write(source, "sessions", sessions[sessions["started_at"].dt.date < last])
    # materialize runs to the landing zone's last day (the labels'): the sessions' empty last day is freshness's
    said = [line for line in review(infer(source)) if line.startswith("gates.volume")]
    assert len(said) == 1 and said[0].startswith(
        f"gates.volume: the freshness rule will hold back 1 day(s) of sessions ({last})"
    )
    _write(source, "labels", labels[labels["labeled_at"].dt.date < last].assign(label=1, label_source="implicit"))
    assert not [line for line in review(infer(source)) if line.startswith("gates.volume")]
    # a day without rows after steady ones is freshness's: its remedy is z, not the band's tolerance
    gap = (START + timedelta(days=12)).date()
    _write(
        source, "sessions", sessions[(sessions["started_at"].dt.date != gap) & (sessions["started_at"].dt.date < last)]
    )
    said = [line for line in review(infer(source)) if line.startswith("gates.volume")]
    assert len(said) == 1 and said[0].startswith(
        f"gates.volume: the freshness rule will hold back 1 day(s) of sessions ({gap}): no rows after steady days"
    )
    assert "raise gates.volume.tables.sessions.z" in said[0]


def test_cli_writes_refuses_to_overwrite_and_prints_review(zone, tmp_path, capsys):
    source, *_ = zone
    out = tmp_path / "cfg" / "impact_ledger.yml"
    assert main(["init", "--source", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "model a:" in printed and "positive_decision" in printed and "users.gender" in printed
    assert parse_config(yaml.safe_load(out.read_text())).models["a"].experiment is True
    out.write_text("kept")
    assert main(["init", "--source", str(source), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "kept"
    assert main(["init", "--source", str(source), "--out", str(out), "--force"]) == 0
    assert out.read_text() != "kept"


def test_cli_writes_the_project_file_impact_ledger_config_names_and_does_not_read_it_first(
    zone, tmp_path, capsys, monkeypatch
):
    # the variable materialize reads: a new user sets it first, before the file exists (it stopped init)
    source, *_ = zone
    named = tmp_path / "deploy" / "impact_ledger.yml"
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(named))
    assert main(["init", "--source", str(source)]) == 0
    assert parse_config(yaml.safe_load(named.read_text())).models["a"].experiment is True
    assert f"then: impact-ledger materialize --config {named}" in capsys.readouterr().out
    elsewhere = tmp_path / "other.yml"
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(tmp_path / "not_yet.yml"))
    assert main(["init", "--source", str(source), "--out", str(elsewhere)]) == 0 and elsewhere.is_file()
    assert not (tmp_path / "not_yet.yml").exists()


@pytest.mark.parametrize("case", ["missing", "empty", "file", "garbage", "mixed", "no_time_column", "ragged"])
def test_cli_errors_are_one_line(tmp_path, capsys, case):
    source = tmp_path / "zone"
    if case == "empty":
        source.mkdir()
    elif case == "file":
        source.write_text("x")
    elif case == "garbage":
        (source / "predictions").mkdir(parents=True)
        (source / "predictions" / "p.parquet").write_bytes(b"not parquet at all")
    elif case == "mixed":
        _write(source, "sessions", pd.DataFrame({"session_id": ["s"], "user_id": ["u"], "started_at": ["2025-01-01"]}))
        _write(
            source,
            "sessions",
            pd.DataFrame({"session_id": ["t"], "user_id": ["u"], "started_at": ["2025-01-02"]}),
            "parquet",
            file="more",
        )
    elif case == "no_time_column":
        _write(source, "sessions", pd.DataFrame({"session_id": ["s"], "user_id": ["u"]}))
    elif case == "ragged":  # the loader's own words for a row with a field too many
        (source / "sessions").mkdir(parents=True)
        (source / "sessions" / "s.csv").write_text("session_id,user_id,started_at\ns,u,2025-01-01\nt,u,2025-01-02,x\n")
    out = tmp_path / "cfg.yml"
    assert main(["init", "--source", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("impact-ledger: error: ") and "Traceback" not in err
    expected = {
        "missing": "does not exist",
        "empty": "no contract tables",
        "file": "not a directory",
        "garbage": "p.parquet",
        "mixed": "mixed Parquet and CSV",
        "no_time_column": "'started_at'",
        "ragged": "s.csv: table 'sessions', line 3: the row has 4 fields but the header names 3 columns",
    }[case]
    assert expected in err
    assert not out.exists()
    with pytest.raises(InitError):
        infer(source)


DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


def _daily_zone(source: Path, fmt: str, renamed: dict[str, dict[str, str]], from_day: int = 2) -> Path:
    """Predictions and orders, one file a day; ``renamed``: table -> {column: its name} in the files from ``from_day``."""
    for i, day in enumerate(DAYS):
        tables = {
            "predictions": pd.DataFrame(
                {
                    "prediction_id": [f"p{i}a", f"p{i}b"],
                    "model_id": "m",
                    "model_version": "v",
                    "user_id": "u",
                    "predicted_at": [f"{day} 10:00", f"{day} 11:00"],
                    "score": [0.2, 0.7],
                }
            ),
            "orders": pd.DataFrame(
                {
                    "order_id": [f"o{i}"],
                    "user_id": "u",
                    "ordered_at": f"{day} 12:00",
                    "revenue": 3.5,
                    "status": "completed",
                }
            ),
        }
        for name, frame in tables.items():
            if i >= from_day:
                frame = frame.rename(columns=renamed.get(name, {}))
            _write(source, name, frame, fmt, file=f"{name}_{day}")
    return source


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_column_renamed_in_one_file_is_said_of_that_file_as_materialize_says_it(tmp_path, fmt):
    # init named the table's first file (which has the column) and gave no hint; materialize named the right one
    import duckdb

    from orchestration.lib.raw_loader import load_days

    source = _daily_zone(tmp_path / "zone", fmt, {"predictions": {"predicted_at": "predicted_on"}})
    with pytest.raises(InitError) as err:
        infer(source)
    bad = source / "predictions" / f"predictions_{DAYS[2]}.{fmt}"
    assert str(err.value).startswith(f"{bad}: table 'predictions' is missing required column 'predicted_at'")
    assert str(err.value).endswith("; the file's other columns: predicted_on: one of them renamed?")
    with duckdb.connect() as conn, pytest.raises(ContractError) as loader:
        load_days(conn, "predictions", source, [date.fromisoformat(DAYS[2])])
    assert str(err.value) == str(loader.value)  # the loader's own words


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_required_column_misspelt_in_some_files_names_them_with_the_near_match(tmp_path, fmt):
    # init said only "table 'orders' lacks contract column(s) revenue", materialize "the file has 'Revenue '"
    source = _daily_zone(tmp_path / "zone", fmt, {"orders": {"revenue": "Revenue "}})
    said = [line for line in review(infer(source)) if "revenue" in line]
    bad = source / "orders" / f"orders_{DAYS[2]}.{fmt}"
    assert len(said) == 1 and said[0].startswith(f"{bad}: table 'orders' is missing required column 'revenue'")
    assert "the file has 'Revenue ': contract column names are matched exactly" in said[0]
    assert f"orders_{DAYS[0]}" not in said[0]
    # two files without it: the first, and how many more
    source = _daily_zone(tmp_path / "two", fmt, {"orders": {"revenue": "Revenue "}}, from_day=1)
    said = [line for line in review(infer(source)) if "revenue" in line]
    first = source / "orders" / f"orders_{DAYS[1]}.{fmt}"
    assert said[0].startswith(f"{first} (and 1 more file(s) without it): table 'orders' is missing required column")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_score_misspelt_in_one_file_is_named_there_not_a_traceback(tmp_path, fmt):
    # the scores' unit check met NULL counts (no score column in every file) and raised a TypeError
    source = _daily_zone(tmp_path / "zone", fmt, {"predictions": {"score": "scor"}}, from_day=2)
    said = [line for line in review(infer(source)) if "'score'" in line]
    bad = source / "predictions" / f"predictions_{DAYS[2]}.{fmt}"
    assert len(said) == 1 and said[0].startswith(f"{bad}: table 'predictions' is missing required column 'score'")
    assert "the file's other columns: scor: one of them renamed?" in said[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_optional_column_absent_is_not_a_missing_column(tmp_path, fmt):
    # threshold (optional) in two files of three, session_id (optional) in none: the loader reads both
    source = _daily_zone(tmp_path / "zone", fmt, {})
    for day in DAYS[:2]:
        path = source / "predictions" / f"predictions_{day}.{fmt}"
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        _write(source, "predictions", frame.assign(threshold=0.5), fmt, file=path.name.split(".")[0])
    inf = infer(source)
    assert not inf.tables["predictions"].missing_columns and not inf.tables["orders"].missing_columns
    assert not [line for line in review(inf) if "missing" in line or "lacks" in line]


def test_every_unreadable_file_is_named_at_once(tmp_path, capsys):
    # init stopped at the first 0-byte file: a user fixed it, ran again and met the next
    source = _daily_zone(tmp_path / "zone", "csv", {})
    empty = [source / "predictions" / f"predictions_{DAYS[1]}.csv", source / "orders" / f"orders_{DAYS[2]}.csv"]
    for path in empty:
        path.write_bytes(b"")
    (source / "predictions" / "p.parquet").write_bytes(b"not parquet at all")  # and a table's mixed formats
    out = tmp_path / "cfg.yml"
    assert main(["init", "--source", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("impact-ledger: error: 4 problems reading the tables' files")
    assert "mixed Parquet and CSV files" in err and f"{empty[1]}: table 'orders': the file is empty (0 bytes)" in err
    assert f"{source / 'predictions' / 'p.parquet'}: table 'predictions': not a Parquet file" in err
    (source / "predictions" / "p.parquet").unlink()
    with pytest.raises(InitError) as raised:
        infer(source)
    assert all(f"{path}: table '" in str(raised.value) for path in empty) and "(2) " in str(raised.value)


def test_a_model_too_small_for_label_based_alerts_and_fairness_is_named(zone):
    # ~130 predictions a day never reach 300 labelled: no precision alert, no fairness verdict, ever, unsaid
    source, _, preds, labels = zone
    said = [line for line in review(infer(source)) if "alerts.min_labelled" in line]
    daily = preds[preds["model_id"] == "a"].groupby(preds["predicted_at"].dt.date).size()
    # by hand: model a's calendar days (day 4 empty counts as 0) have a median of 20 predictions
    calendar = daily.reindex(pd.date_range(daily.index.min(), daily.index.max()).date, fill_value=0)
    assert any(line.startswith("models.a: about ") and f"(median {calendar.median():g} a day" in line for line in said)
    assert any(line.startswith("models.b: about ") for line in said)
    # fairness per group: model a's 180 predictions, 80% labelled, hold fewer than 500 of any gender's
    [groups] = [line for line in review(infer(source)) if line.startswith("models.a: groups under bias.min_labelled")]
    assert groups.endswith("(all its groups)") and "users.gender: " in groups


def test_a_control_character_in_a_users_value_is_escaped_in_the_written_file(zone):
    # a cp1252 'Š' read as latin-1 is U+008A: init crashed with a YAML traceback writing it into a comment
    source, users, _, _ = zone
    users = users.assign(gender=["f\x8a" if i % 2 else "m" for i in range(len(users))])
    _write(source, "users", users)
    text = render(infer(source))
    assert "f\\x8a" in text and "\x8a" not in text
    assert parse_config(yaml.safe_load(text)).protected_attributes == ["gender"]


def test_times_without_an_offset_and_numbers_with_separators_get_review_lines(zone):
    # a Berlin export of local times was read as UTC (9 of 35 days counted differently), and a feature written
    # "44,361.63" stayed text, so drift read it as categories (PSI 4.7 a day): neither was said
    source, _, preds, _ = zone
    said = review(infer(source))
    naive = [line for line in said if line.startswith("times without a UTC offset")]
    # by hand: the zone's CSV and Parquet times carry no offset; predictions' are naive datetimes
    assert naive and f"predictions.predicted_at ({len(preds)} values)" in naive[0]
    # users.signup_at too (cohorts and retention are cut by its day), once it holds times, not dates alone
    assert "users.signup_at" not in naive[0]
    users = pd.read_csv(source / "users" / "users.csv")
    _write(source, "users", users.assign(signup_at=users["signup_at"] + " 23:30:00"))
    said = review(infer(source))
    assert f"users.signup_at ({len(users)} values)" in next(line for line in said if line.startswith("times without"))
    shifted = preds.assign(
        predicted_at=preds["predicted_at"].dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        feature_income=[f"{40000 + 7 * i:,}.50" for i in range(len(preds))],
        feature_rate=[f"{i % 10},5" for i in range(len(preds))],
        feature_plain=[f"{i / 3:.4f}" for i in range(len(preds))],
    )
    _write(source, "predictions", shifted, "csv")
    (source / "predictions" / "predictions.parquet").unlink()
    said = review(infer(source))
    assert not any("predictions.predicted_at" in line for line in said if line.startswith("times without"))
    flagged = {line.split(":")[0] for line in said if "numbers written with separators" in line}
    assert flagged == {"predictions.feature_income", "predictions.feature_rate"}


def _bins_shared(values) -> bool:
    """numpy's side: whether drift's decile bins (edge_k < v <= edge_k+1, edges numpy's linear quantiles) hold two
    of ``values``' distinct numbers in one bin."""
    values = np.asarray(values, dtype=float)
    edges = np.quantile(values, np.arange(1, 10) / 10)
    distinct = np.unique(values)
    return len({int((v > edges).sum()) for v in distinct}) < len(distinct)


def test_whole_number_codes_that_share_a_decile_bin_are_named_and_other_numbers_are_not(zone):
    # a trial's customer subtype coded 1-41 in a CSV: binned at the deciles its PSI read 0.05 where it was 0.3-0.7
    source, _, preds, _ = zone
    n = len(preds)
    rng = np.random.default_rng(3)
    coded = preds.assign(
        feature_subtype=rng.integers(1, 42, n),  # codes: many share a bin
        feature_store=[(1, 2, 3, 4, 7)[i % 5] for i in range(n)],  # five even shares: a bin each
        feature_flag=[i % 2 for i in range(n)],  # two values
        feature_orders=rng.poisson(1.5, n),  # a count from 0: not a code, though its values share bins
        # a count from 1 with gaps (a trial's lymph nodes: 30 values in 1..51): not codes either
        feature_nodes=rng.choice([*range(1, 11), 15, 20, 25, 30, 40, 51], n, p=[0.08] * 10 + [0.05] * 2 + [0.025] * 4),
        feature_age=rng.integers(18, 90, n),  # more than 50 values: a quantity
        # fewer than 50 whole numbers filling their range, not from 1 (a trial's ages 50-101, sample years): quantities
        feature_elder=rng.integers(50, 90, n),
        feature_year=rng.integers(1995, 2009, n),
        feature_amount=rng.random(n) * 100,  # not whole
    )
    (source / "predictions" / "predictions.parquet").unlink()
    _write(source, "predictions", coded.assign(predicted_at=coded["predicted_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")))
    expected = {f"predictions.{c}" for c in ("feature_subtype", "feature_store") if _bins_shared(coded[c])}
    assert expected == {"predictions.feature_subtype"}  # the premise: counts' values share bins too
    assert all(_bins_shared(coded[c]) for c in ("feature_orders", "feature_nodes", "feature_elder", "feature_year"))
    said = review(infer(source))
    lines = [line for line in said if "of drift's decile bins" in line]
    assert {line.split(":")[0] for line in lines} == expected
    distinct = coded["feature_subtype"].nunique()
    assert lines[0].startswith(
        f"predictions.feature_subtype: {distinct} distinct whole numbers (1, 2, 3, 4, 5, 6, ...)"
    )
    # a Parquet string column of the same codes stays text (a category each): nothing to say; a Parquet integer
    # column is a number, as the CSV's
    (source / "predictions" / "predictions.csv").unlink()
    _write(source, "predictions", coded.assign(feature_subtype=coded["feature_subtype"].astype(str)), "parquet")
    assert not any("of drift's decile bins" in line for line in review(infer(source)))
    _write(source, "predictions", coded, "parquet")
    assert [line.split(":")[0] for line in review(infer(source)) if "decile bins" in line] == [
        "predictions.feature_subtype"
    ]


def test_values_outside_a_contract_set_are_named_with_their_counts(zone):
    # a database's outcome names as label_source ('billing_disconnect', ...): the loader quarantined every label,
    # and init had said nothing
    source, _, _, labels = zone
    assert not any(line.startswith("labels.label_source") for line in review(infer(source)))
    renamed = labels.assign(
        label_source=["billing_disconnect" if i % 3 else "billing_renewal" for i in range(len(labels))]
    )
    renamed.loc[renamed.index[:5], "label_source"] = "human_review"  # allowed: not counted
    _write(source, "labels", renamed)
    said = [line for line in review(infer(source)) if line.startswith("labels.label_source")]
    # by hand: every third label is a renewal, the rest disconnects, 5 of them allowed
    outside = renamed[~renamed["label_source"].isin(["implicit", "human_review"])]["label_source"].value_counts()
    assert len(said) == 1
    assert f"{outside.sum()} of {len(renamed)} rows" in said[0]
    assert f"'billing_disconnect' ({outside['billing_disconnect']})" in said[0]
    assert f"'billing_renewal' ({outside['billing_renewal']})" in said[0]
    assert "quarantines" in said[0] and "implicit, human_review" in said[0]


def test_a_model_without_any_label_gets_its_label_coverage_alert_off_and_says_how_to_turn_it_on(zone):
    # a trial's labels a year late: none in the zone, the default rule (judged after 7 days) alerted 27 days
    source, _, preds, labels = zone
    _write(source, "labels", labels[labels["prediction_id"].isin(preds.loc[preds["model_id"] == "a", "prediction_id"])])
    inf = infer(source)
    config = parse_config(yaml.safe_load(render(inf)))
    assert config.models["b"].alerts["label_coverage"].below == 0
    assert config.models["a"].alerts["label_coverage"].below != 0  # labelled: judged (after its labels' p90)
    assert "no label of this model in the landing zone, so when its labels arrive is unknown: off" in render(inf)
    assert "label_horizon_days: 30  # the default: no label to measure" in render(inf)  # not "p99 of the delay"


def test_the_share_labelled_counts_back_from_the_zones_newest_prediction_when_labels_stopped(zone):
    # a trial's labels stopped weeks before its predictions: counted back from the last label, init read "93%
    # labelled" of the predictions old enough, where 46% were
    source, _, preds, _ = zone
    early = preds[preds["predicted_at"] < START + timedelta(days=4)]  # labels for days 0-3 only, a day late
    _write(source, "labels", _positive_a_day_later(early))
    (a,) = [m for m in infer(source).models if m.model_id == "a"]
    # by hand: p99 of a delay of exactly one day is 1; old enough = made a day before the zone's newest prediction
    mature = preds[
        (preds["model_id"] == "a") & (preds["predicted_at"] <= preds["predicted_at"].max() - timedelta(days=1))
    ]
    done = mature["prediction_id"].isin(early["prediction_id"]).sum()
    assert (a.mature, a.mature_labelled) == (len(mature), done) and done < len(mature)
    assert a.labelled_said.startswith(f"labelled: {done / len(mature):.0%} of the {len(mature)} predictions old enough")


def test_a_model_that_stops_while_another_goes_on_is_offered_retired_after(zone):
    # a trial's v1 handed over to a v2 model id: init warned only of a stopped feed, retired_after unsaid
    source, _, preds, _ = zone
    _write(
        source,
        "predictions",
        preds[~((preds["model_id"] == "b") & (preds["predicted_at"] >= START + timedelta(days=6)))],
        "parquet",
    )
    said = [line for line in review(infer(source)) if "retired_after" in line]
    # by hand: b's last day is day 5, a's (the newest) day 9
    last, newest = (START + timedelta(days=5)).date(), (START + timedelta(days=9)).date()
    assert said == [
        f"models.b: its predictions stop on {last}, 4 day(s) before the newest ({newest}): if it was retired, set "
        f"models.b.retired_after: {last} (no volume alert nor stale-predictions warning after it; summary says retired)"
    ]


def test_labels_other_than_0_and_1_are_named_with_how_to_monitor_more_than_two_classes(zone):
    # a trial's three-class classifier exported with labels 0/1/2: 29 rows quarantined at materialize, init silent
    source, _, _, labels = zone
    assert not any(line.startswith("labels.label:") for line in review(infer(source)))
    classes = labels.assign(label=[i % 3 for i in range(len(labels))])
    classes["label"] = classes["label"].astype(float)  # 1.0 is the label 1: not counted
    _write(source, "labels", classes)
    [said] = [line for line in review(infer(source)) if line.startswith("labels.label:")]
    # by hand: every third label is a 2
    assert f"{(classes['label'] == 2).sum()} of {len(classes)} rows hold values other than 0 and 1 ('2.0' (" in said
    assert "one model per class" in said


def test_a_protected_column_with_a_space_in_its_header_is_proposed_under_its_name(zone):
    # 'gender ' was written as protected_attributes: [gender ] (YAML: 'gender'), while the loader kept 'gender '
    source, users, _, _ = zone
    _write(source, "users", users.rename(columns={"gender": "gender "}))
    assert "gender" in infer(source).proposed_attributes


def test_user_ids_written_differently_and_repeated_users_are_named(zone):
    # ids 000001 in predictions and 1 in users: every day with data held back (user_known), init had said nothing;
    # users with history rows: the earliest kept, the later changes quarantined, nothing said either
    source, users, preds, _ = zone
    assert not any(line.startswith(("predictions.user_id", "users:")) for line in review(infer(source)))
    numbered = users.assign(user_id=[str(i) for i in range(len(users))])
    history = numbered.head(7).assign(city="moved")
    _write(source, "users", pd.concat([numbered, history]))
    padded = preds.assign(user_id=[f"{int(u[1:]):06d}" for u in preds["user_id"]])
    padded.loc[padded.index[:3], "user_id"] = "ghost"  # unknown however written
    _write(source, "predictions", padded, "parquet")
    said = review(infer(source))
    line = next(x for x in said if x.startswith("predictions.user_id"))
    # by hand: every prediction's user is unknown as written; all but the 3 ghosts match without the zeros
    assert line.startswith(f"predictions.user_id: {len(preds)} of {len(preds)} rows (100%)")
    assert f"; {len(preds) - 3} of them match once leading zeros are dropped" in line
    assert any(x.startswith("users: 7 user_id(s) have more than one row") for x in said)


def test_whole_float_user_ids_are_the_integers_the_loader_lands(zone):
    # pandas writes integer ids with a gap as float64: init read users' 3.0 as '3.0' against the predictions' '3'
    # and named every prediction's user unknown, though the loader lands both as '3'
    source, users, preds, _ = zone
    ids = [float(i) for i in range(len(users))]
    ids[-1] = None  # the gap that makes pandas write floats
    (source / "users" / "users.csv").unlink()  # a CSV holds the text as written: Parquet keeps the float
    _write(source, "users", users.assign(user_id=ids), "parquet")
    numbered = preds.assign(user_id=[int(u[1:]) % (len(users) - 1) for u in preds["user_id"]])
    _write(source, "predictions", numbered, "parquet")
    assert not any(line.startswith("predictions.user_id") for line in review(infer(source)))


def test_a_model_costs_id_no_model_has_is_named_with_its_nearest_model(zone):
    # a trial's cost export misspelt its model (reply_likelihod): init said nothing, the model's cost counted as 0
    source, _, preds, _ = zone
    _write(source, "predictions", preds.replace({"model_id": {"b": "reply_likelihood"}}), "parquet")
    days = [(START + timedelta(days=d)).date() for d in range(3)]

    def costs(ids: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"date": days[: len(ids)], "model_id": ids, "serving_cost": 2.5, "review_cost": 0.0})

    _write(source, "model_costs", costs(["a", "reply_likelihood", "a"]))  # every id a model's: nothing to say
    assert not any(x.startswith("model_costs.model_id") for x in review(infer(source)))
    _write(source, "model_costs", costs(["reply_likelihod", "reply_likelihod", "zzz"]))
    said = [x for x in review(infer(source)) if x.startswith("model_costs.model_id")]
    # by hand: 2 rows of reply_likelihod, one letter short of the model reply_likelihood; 1 of zzz, like no model
    assert said[0].startswith(
        "model_costs.model_id: 2 row(s) name 'reply_likelihod', no model of predictions or experiments (did you "
        "mean 'reply_likelihood'?): their cost counts toward no model"
    )
    assert said[1].startswith("model_costs.model_id: 1 row(s) name 'zzz', no model of predictions or experiments: ")
    assert len(said) == 2


def test_a_horizon_read_from_delays_cut_at_the_landing_zones_end_is_named(tmp_path):
    # init on the first 7 days of a feed whose labels take 3-20 days proposed a 7-day horizon, saying nothing:
    # most labels would never have been counted
    rng = np.random.default_rng(3)
    source = tmp_path / "young"
    _write(source, "users", pd.DataFrame({"user_id": ["u1"], "signup_at": [START]}))
    at = [START + timedelta(days=int(d), hours=9) for d in rng.integers(0, 7, 300)]
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(300)],
            "model_id": "m",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": at,
            "score": rng.random(300),
        }
    )
    delays = pd.to_timedelta(rng.integers(3, 21, 300), unit="D")
    labels = preds.assign(labeled_at=preds["predicted_at"] + delays, label=1, label_source="implicit")
    end = START + timedelta(days=7)  # the export ends: only the labels landed by then
    _write(source, "predictions", preds)
    _write(
        source, "labels", labels[labels["labeled_at"] < end][["prediction_id", "label", "labeled_at", "label_source"]]
    )
    said = [x for x in review(infer(source)) if x.startswith("models.m.label_horizon_days")]
    assert said and "the delays are cut at its end" in said[0]
    # and the label coverage comment: its wait read from the same cut delays is too short (a trial's 71 days from
    # delays of 60-120 seen in 74 raised four false alerts)
    [comment] = [x for x in render(infer(source)).splitlines() if "# label coverage alert:" in x]
    assert "the delays were seen only up to the zone's end, 6 days after the first prediction" in comment
    # 60 days of the feed with every label: a zone long enough to have seen 2 x the 20-day horizon
    at = [START + timedelta(days=int(d), hours=9) for d in rng.integers(0, 40, 300)]
    later = labels.assign(predicted_at=at, labeled_at=pd.Series(at) + delays)
    _write(source, "predictions", later.drop(columns=["labeled_at", "label", "label_source"]))
    _write(source, "labels", later[["prediction_id", "label", "labeled_at", "label_source"]])
    assert not [x for x in review(infer(source)) if "the delays are cut at its end" in x]
    assert "the delays were seen only up to" not in render(infer(source))


def test_day_month_times_get_one_review_line_not_lines_read_from_values_init_could_not_read(tmp_path):
    # dd/mm prediction times: after the right line, init said "median 0 predictions a day" and listed the very
    # values it could not read as "times without a UTC offset"; the count of a table's bad values named one file
    source = tmp_path / "zone"
    days = ["04/05/2026 06:14", "05/05/2026 07:32"]
    for i, day in enumerate(days):
        frame = pd.DataFrame(
            {"prediction_id": [f"p{i}"], "model_id": "m", "model_version": "1", "user_id": "u", "score": 0.4}
            | {"predicted_at": [day]}
        )
        _write(source, "predictions", frame, file=f"predictions_2026-05-0{4 + i}")
    said = review(infer(source))
    [refused] = [line for line in said if "'predicted_at'" in line]
    assert "predictions_2026-05-04.csv (and 1 more file(s))" in refused and "2 value(s) cannot be cast" in refused
    assert "day/month or month/day order?" in refused
    assert not any("predictions a day" in line for line in said)
    assert not any("without a UTC offset" in line and "predicted_at" in line for line in said)


def test_a_table_whose_exporter_moved_from_csv_to_parquet_is_read_day_by_day_as_materialize_reads_it(tmp_path):
    # the first 12 days CSV, then Parquet once v2 shipped: init stopped with 23 full paths ("use one format per
    # table"), though materialize loads a CSV day among Parquet days. One day mixing both is still an error.
    import duckdb

    from orchestration.lib.raw_loader import load_days

    source = tmp_path / "zone"
    days = [date(2025, 3, d) for d in (1, 2, 3)]
    for i, day in enumerate(days):
        frame = pd.DataFrame(
            {
                "prediction_id": [f"p{i}a", f"p{i}b"],
                "model_id": "m",
                "model_version": "v1" if i < 2 else "v2",
                "user_id": "u",
                "predicted_at": [f"{day} 10:00", f"{day} 11:00"],
                "score": [0.2, 0.7],
            }
        )
        if i == 2:  # Parquet: typed by its exporter
            frame["predicted_at"] = pd.to_datetime(frame["predicted_at"])
        _write(source, "predictions", frame, "csv" if i < 2 else "parquet", file=f"predictions_{day}")
    inf = infer(source)
    assert inf.tables["predictions"].rows == 6 and inf.models[0].predictions == 6
    with duckdb.connect() as conn:  # the loader agrees, day by day and over the range
        assert sum(r.rows_loaded for r in load_days(conn, "predictions", source, days)) == 6
    from orchestration.lib.source_range import _time_column_range

    files = sorted((source / "predictions").iterdir())  # materialize's default range reads the times of both
    assert _time_column_range(files, "predicted_at", "predictions") == (days[0], days[-1])
    # one day in both formats: the loader's error, naming the formats, their counts and a file of each
    extra = pd.read_parquet(source / "predictions" / f"predictions_{days[2]}.parquet").assign(prediction_id=["x", "y"])
    extra.to_csv(source / "predictions" / f"predictions_{days[2]}_late.csv", index=False)
    with pytest.raises(InitError) as err:
        infer(source)
    message = str(err.value)
    assert "mixed Parquet and CSV files for one day of table 'predictions': 1 Parquet" in message
    assert f"predictions_{days[2]}_late.csv" in message and "one day's files share one format" in message


def test_a_prediction_delivered_twice_is_labelled_once(zone):
    # "4322 of 9029 predictions labelled" where the files held 4321 labels: a duplicated prediction's one label
    source, _, preds, labels = zone
    twice = preds[preds["prediction_id"].isin(labels["prediction_id"])].iloc[:1]
    _write(source, "predictions", pd.concat([preds, twice]), "parquet")
    by_model = {m.model_id: m for m in infer(source).models}
    model = twice["model_id"].iloc[0]
    labelled = preds[preds["model_id"] == model]["prediction_id"].isin(labels["prediction_id"]).sum()
    assert by_model[model].labelled == labelled


def test_a_risk_named_model_is_pointed_to_harmful_without_a_contradiction(tmp_path):
    # the file said "sounds like a risk score: harmful is likely" above "positive_decision: favourable"
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(20)], "signup_at": START}))
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(40)],
            "model_id": "mortgage_deny_risk",
            "model_version": "v1",
            "user_id": [f"u{i % 20}" for i in range(40)],
            "predicted_at": [START + timedelta(hours=i) for i in range(40)],
            "score": [i / 40 for i in range(40)],
            "threshold": 0.5,
        }
    )
    _write(source, "predictions", preds)
    text = render(infer(source))
    said = "'mortgage_deny_risk' sounds like a risk score: the decision's effect on the person decides, not the name"
    assert said in text and "harmful is likely" not in text
    # two trials read it the wrong way: a credit-line increase and a referral for a biopsy are favourable
    assert "favourable if it gives them something (an offer, a credit-line increase, a referral for care)" in text
    assert text.index(said) < text.index("positive_decision: favourable")  # the REVIEW default, explained above it


def test_a_version_too_small_for_its_drift_to_be_judged_is_named_though_its_model_is_not(tmp_path):
    # a trial's v2 scored ~60 a day beside v1's ~250: drift is judged per version (min_count 200), so v2's was
    # never judged, and init compared only the model's 310 a day with 200
    source = tmp_path / "zone"
    rows = [
        (f"{version}-{day}-{k}", "m", version, f"u{k}", START + timedelta(days=day, hours=k % 20), 0.3, 0.5)
        for day in range(10)
        for version, per_day in (("v1", 250), ("v2", 60 if day >= 5 else 0))
        for k in range(per_day)
    ]
    preds = pd.DataFrame(
        rows, columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"]
    )
    _write(source, "predictions", preds, "parquet")
    said = review(infer(source))
    # by hand: the model's median 250 (days 0-4) / 310 (days 5-9) a day is above 200; v2's, over its own days, 60,
    # 420 in 7 days
    assert not any(line.startswith("models.m: median") for line in said)
    assert (
        "models.m: drift (PSI) is judged per version, alone on days with 200 values (alerts.rules.psi.min_count); "
        "median predictions a day of v2 60: a smaller day is judged on its version's last 7 days pooled "
        "(alerts.rules.psi.pool_days)"
    ) in said


def _scored_zone(source: Path, positive_share: dict[str, float], days: int = 20, per_day: int = 50) -> pd.DataFrame:
    """Users, and models scored `per_day` a day for `days` days, each prediction labelled a day later with 1 at
    about the model's `positive_share`; returns the labels joined to their predictions' model_id."""
    rng = np.random.default_rng(11)
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": START}))
    preds, labels = [], []
    for model, share in positive_share.items():
        for i in range(days * per_day):
            at = START + timedelta(days=i // per_day, minutes=i % per_day)
            preds.append((f"{model}-{i}", model, "v1", f"u{i % 100}", at, float(rng.random()), 0.5))
            labels.append((f"{model}-{i}", int(rng.random() < share), at + timedelta(days=1), "implicit"))
    columns = ["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"]
    _write(source, "predictions", pd.DataFrame(preds, columns=columns))
    labels = pd.DataFrame(labels, columns=["prediction_id", "label", "labeled_at", "label_source"])
    _write(source, "labels", labels)
    return labels.assign(model_id=labels["prediction_id"].str.split("-").str[0])


def test_the_calibration_gap_limit_is_scaled_to_the_labels_rarer_outcome(tmp_path):
    # a resume screen's callbacks were 8% positive: groups over-scored by 34% and under-scored by 19% (gaps +0.02
    # and -0.018) could never fail a limit of 0.1, which exceeds the base rate itself
    source = tmp_path / "zone"
    labels = _scored_zone(source, {"screen": 0.08})
    # a human review overrides the implicit label (stg_labels): the rate is of the labels the marts use
    reviewed = labels.head(8).assign(label=1, labeled_at=lambda f: f["labeled_at"] - pd.Timedelta(hours=12))
    _write(source, "labels", pd.concat([labels, reviewed.assign(label_source="human_review")]).drop(columns="model_id"))
    used = labels.set_index("prediction_id")["label"].copy()
    used[reviewed["prediction_id"]] = 1
    p = used.mean()
    assert 0.06 < p < 0.1 and (labels.head(8)["label"] == 0).any()
    expected = float(f"{0.2 * min(p, 1 - p):.2g}")  # 0.1 at p = 0.5, to 2 significant figures
    inf = infer(source)
    text = render(inf)
    assert parse_config(yaml.safe_load(text)).bias.calibration_gap_max == expected
    assert f"# screen's labels are {p:.1%} positive: a gap of 0.1 would exceed the rarer outcome's rate" in text
    assert any(line.startswith(f"bias.calibration_gap_max: {expected:g}, scaled to") for line in review(inf))

    # labels half positive keep the default; several models share the bias settings: the rarest outcome sets them
    source = tmp_path / "two"
    labels = _scored_zone(source, {"even": 0.5, "mostly": 0.85})
    labels.loc[labels["model_id"] == "even", "label"] = np.arange((labels["model_id"] == "even").sum()) % 2
    _write(source, "labels", labels.drop(columns="model_id"))
    rates = labels.groupby("model_id")["label"].mean()
    assert rates["even"] == 0.5
    text = render(infer(source))
    expected = float(f"{0.2 * (1 - rates['mostly']):.2g}")
    assert parse_config(yaml.safe_load(text)).bias.calibration_gap_max == expected < 0.1
    assert f"# mostly's labels are {rates['mostly']:.1%} positive ({1 - rates['mostly']:.1%} negative)" in text
    assert "bias settings are project-wide" in text
    _write(source, "labels", labels[labels["model_id"] == "even"].drop(columns="model_id"))
    text = render(infer(source))
    assert parse_config(yaml.safe_load(text)).bias.calibration_gap_max == 0.1 and "labels are" not in text


def _weekly_zone(
    source: Path,
    share: dict[str, float],
    days: int = 38,
    weekday: int = 200,
    quiet: tuple[int, ...] = (5, 6),
    one_off: tuple[int, ...] = (),
    counts: dict[str, list[int]] | None = None,
) -> list[date]:
    """Predictions of model m and sessions, `weekday` rows a day and the table's `share` of it on the `quiet`
    weekdays (date.weekday(): Saturdays and Sundays) and on the `one_off` days (indexes into the calendar), the
    last day (a Wednesday) exported part-way (20 rows), or a table's rows of each day as `counts` give them;
    returns the calendar days."""
    calendar = [(START + timedelta(days=d)).date() for d in range(days)]
    assert START.weekday() == 0 and calendar[-1].weekday() == 2
    odd = {calendar[i] for i in one_off}

    def rows(table: str, day: date) -> int:
        if table in (counts or {}):
            return counts[table][calendar.index(day)]
        if day == calendar[-1]:
            return 20
        return round(weekday * share[table]) if day.weekday() in quiet or day in odd else weekday

    stamps = {
        t: [
            datetime.combine(d, datetime.min.time()) + timedelta(minutes=k) for d in calendar for k in range(rows(t, d))
        ]
        for t in share
    }
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": START}))
    at = stamps["predictions"]
    _write(
        source,
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": [f"p{i}" for i in range(len(at))],
                "model_id": "m",
                "model_version": "v1",
                "user_id": [f"u{i % 100}" for i in range(len(at))],
                "predicted_at": at,
                "score": 0.3,
            }
        ),
    )
    at = stamps["sessions"]
    _write(
        source,
        "sessions",
        pd.DataFrame({"session_id": [f"s{i}" for i in range(len(at))], "user_id": "u1", "started_at": at}),
    )
    if at := stamps.get("assignments"):
        units = [f"a{i}" for i in range(len(at))]
        variants = ["holdout", "treated"] * (len(at) // 2) + ["treated"] * (len(at) % 2)
        _write(
            source,
            "assignments",
            pd.DataFrame({"experiment_id": "e", "user_id": units, "variant": variants, "assigned_at": at}),
        )
    return calendar


def test_quiet_weekends_get_a_band_that_passes_them_and_the_review_says_why(tmp_path):
    # two real data sets, weekends at 40% of the weekdays: init named every Saturday and Sunday as a day the
    # volume gate holds back without naming the weekly cycle (the volume_change alert reads a weekday's own
    # level itself: no wider alert band is written)
    source = tmp_path / "zone"
    calendar = _weekly_zone(source, {"predictions": 0.4, "sessions": 0.3})
    inf = infer(source)
    config = parse_config(yaml.safe_load(render(inf)))
    # by hand: a weekend day's trailing 7 days are 5 weekdays (200) and a weekend (80): median 200, so 80 is 60%
    # below it (sessions: 60 rows, 70%), outside the default +-0.5 band (+-100 rows; 4 x sqrt(200) is 57). Judged
    # weekly, a Saturday's expected rows are that median x its share of it the weeks before (80 / 200): 80, in
    # the band; a weekday's share is 1, so the 20-row last day (a Wednesday) against 200 is still held back
    assert config.gates.volume.tables["predictions"].weekly is True
    assert config.gates.volume.tables["sessions"].weekly is True
    assert config.gates.volume.tables["sessions"].tolerance is None  # the band keeps its width
    assert "      sessions: {weekly: true}  # Saturdays and Sundays" in render(inf).splitlines()  # not 1
    assert "volume_change" not in config.models["m"].alerts
    judged_weekends = [d for d in calendar[7:] if d.weekday() >= 5]  # a full trailing week before them
    said = review(inf)
    assert (
        f"gates.volume.tables.predictions: weekly written for a weekly cycle (model m): "
        f"{len(judged_weekends)} of the {len(judged_weekends) + 1} day(s) the default band (±0.5) would hold back "
        "are Saturdays or Sundays (a median 80 rows on weekends, 200 on weekdays; the deepest weekend 60% below its "
        f"trailing median); {WEEKLY_JUDGED}"
    ) in said
    assert any(line.startswith("gates.volume.tables.sessions: weekly written for a weekly cycle: ") for line in said)
    # with weekly written only the part-way last day is held back, said against the weekday's expected rows
    held = [line for line in said if "will hold back" in line]
    assert held == [
        f"gates.volume: the volume gate will hold back 1 day(s) of {t} ({calendar[-1]}): rows far below the trailing "
        f"median x its weekday's share of its week; {held_remedy(t)}"
        for t in ("predictions", "sessions")
    ]


def test_a_weekday_as_far_off_as_the_weekends_is_still_held_back_when_judged_weekly(tmp_path):
    # a trial: a partial Tuesday export (15 rows against ~95) was one of the days the default band held back, and
    # the band widened for the weekends passed it (named since); judged weekly it is held back, as it should be
    source = tmp_path / "zone"
    calendar = _weekly_zone(source, {"predictions": 0.4, "sessions": 1.0}, one_off=(23,))
    partial = calendar[23]
    assert partial.weekday() == 2  # a Wednesday at the weekends' 80 rows, 60% below its trailing median of 200
    inf = infer(source)
    line = next(line for line in review(inf) if line.startswith("gates.volume.tables.predictions: weekly"))
    assert line.endswith(WEEKLY_JUDGED)
    # by hand: a Wednesday's share of its trailing median the weeks before is 200 / 200: 80 against 200 x 1 is
    # out of the band (+-100), as the part-way last day (20 rows) is
    assert inf.volume_holds == {"predictions": [partial, calendar[-1]], "sessions": [calendar[-1]]}
    assert [line for line in _held(review(inf)) if "of predictions" in line] == [
        f"gates.volume: the volume gate will hold back 2 day(s) of predictions ({partial}, {calendar[-1]}): rows far "
        f"below the trailing median x its weekday's share of its week; {held_remedy('predictions')}"
    ]


def test_a_band_that_only_warns_gets_the_weekly_cycles_band_too(tmp_path):
    # a trial: assignments (their volume band only warns: enrolment ramps up) with the same weekend dip as the
    # predictions warned on every weekend; init wrote a band for the predictions only and said nothing of them
    source = tmp_path / "zone"
    calendar = _weekly_zone(source, {"predictions": 0.4, "sessions": 1.0, "assignments": 0.3})
    inf = infer(source)
    config = parse_config(yaml.safe_load(render(inf)))
    # by hand: a weekend day of 60 against a trailing median of 200 is 70% below it; judged weekly, against 200 x
    # its share of it the weeks before (0.3): in the band
    assert config.gates.volume.tables["assignments"].weekly is True
    weekends = [d for d in calendar[7:] if d.weekday() >= 5]
    line = next(line for line in review(inf) if line.startswith("gates.volume.tables.assignments:"))
    assert line.startswith(
        f"gates.volume.tables.assignments: weekly written for a weekly cycle: {len(weekends)} of the "
        f"{len(weekends) + 1} day(s) the default band (±0.5) would warn of are Saturdays or Sundays"
    ), line
    # with the band written only the part-way last day would warn (it holds nothing back: not said as held)
    assert inf.band_warnings == {"assignments": [calendar[-1]]}
    assert not [line for line in review(inf) if "will hold back" in line and "assignments" in line]


@pytest.mark.parametrize("weekend", [1.0, 0.7])
def test_weekends_within_the_band_get_no_weekly_advice(tmp_path, weekend):
    # no cycle (1.0), or weekends 30% below the weekdays, inside the default +-0.5 band (0.7)
    source = tmp_path / "zone"
    calendar = _weekly_zone(source, {"predictions": weekend, "sessions": weekend})
    inf = infer(source)
    text = render(inf)
    config = parse_config(yaml.safe_load(text))
    # (the model has no label: its label-coverage rule is off, nothing else)
    assert config.gates.volume.tables == {} and set(config.models["m"].alerts) == {"label_coverage"}
    assert "weekly" not in text
    said = review(inf)
    assert not [line for line in said if "weekly" in line or "Saturdays" in line]
    assert [line for line in said if "will hold back" in line and f"({calendar[-1]})" in line]


def test_busy_weekends_are_no_held_days_and_get_no_band(tmp_path):
    # weekends at 2.5x the weekdays: a rise only warns (volume_spike), so init neither names them as held back
    # nor widens the band that judges drops (before, every weekend was held back and a +-1.55 band written)
    source = tmp_path / "zone"
    calendar = _weekly_zone(source, {"predictions": 2.5, "sessions": 2.5})
    inf = infer(source)
    config = parse_config(yaml.safe_load(render(inf)))
    assert config.gates.volume.tables == {}
    # by hand: a weekend day's trailing median is 200 (five weekdays), 500 is +150%, over the band but a warning;
    # a Monday's trailing 7 days are five of 200 and two of 500: median 200, inside; only the 20-row last day drops
    assert inf.volume_holds == {"predictions": [calendar[-1]], "sessions": [calendar[-1]]}


def test_a_weekend_dip_the_band_catches_in_some_weeks_is_the_cycle_beside_a_wind_down(tmp_path):
    # a trial: Saturdays at ~40-60% of the weekdays (held back in two weeks of six), Sundays at ~25% and a
    # wind-down in the last two weeks: the cycle was Sundays only, 3 of the 8 held days, so no band was written
    source = tmp_path / "zone"
    steady = [200] * 5
    weeks = [steady + [saturday, 60] for saturday in (110, 110, 90, 110)]
    sessions = [n for week in weeks for n in week] + [40] * 9 + [20]
    calendar = _weekly_zone(source, {"predictions": 0.4, "sessions": 1.0}, counts={"sessions": sessions})
    inf = infer(source)
    config = parse_config(yaml.safe_load(render(inf)))
    # by hand: each day's week level (the median of the 7 days around it) is 200 before the wind-down; every
    # Saturday of the steady weeks (110, 110, 90, 110: most of five) lies below 150, half the default band below it,
    # though only the 90 is held back (55% below its trailing median of 200); the Sundays' 60 are 70% below theirs
    assert config.gates.volume.tables["sessions"].weekly is True
    held = [calendar[i] for i in (13, 19, 20, 27, 28, 29, 30)]  # by the default band: the wind-down's first three last
    line = next(line for line in review(inf) if line.startswith("gates.volume.tables.sessions:"))
    assert line == (
        f"gates.volume.tables.sessions: weekly written for a weekly cycle: 4 of the {len(held)} day(s) the default "
        "band (±0.5) would hold back are Saturdays or Sundays (a median 60 rows on weekends, 200 on weekdays; the "
        f"deepest weekend 70% below its trailing median); {WEEKLY_JUDGED}"
    )
    # judged weekly, the wind-down's first three days are still held back: Monday's and Tuesday's 40 against 200 x
    # 1 (their trailing median x their share of it the weeks before), Wednesday's against 110 x 1 (its trailing 7
    # days: 200 x 3, 110, 60, 40, 40), out of +-55; Thursday's against 60 x 1 is inside max(30, 4 x sqrt(60) = 31)
    assert inf.volume_holds["sessions"] == held[-3:]


def test_a_cycles_deepest_day_is_its_deepest_drop_not_its_busiest_day():
    from orchestration.lib.project_init import _weekly_cycle

    # quiet Mondays (60) and busy Saturdays (600) around 200 on the other days, from a Monday
    week = [60, 200, 200, 200, 200, 600, 200]
    cycle = _weekly_cycle(date(2026, 1, 5), week * 4, 0.5, 7, 20)
    assert cycle.quiet == (0,) and cycle.busy == (5,)
    # by hand: a Monday's trailing 7 days are 60, 200 x5, 600: median 200, so 60 is 70% below; a Saturday's 600
    # is 200% above, which only warns: the cycle's deepest day is a drop
    assert cycle.deepest == pytest.approx(-0.7)


def _held(said: list[str]) -> list[str]:
    return [line for line in said if "will hold back" in line]


def test_quiet_mondays_and_tuesdays_get_their_band_and_the_review_names_them(tmp_path):
    # a trial's orders lagging a day made Mondays and Tuesdays quiet (0.3x the other days): init knew weekends
    # only, wrote no band and said the volume gate would hold back every Monday and Tuesday
    source = tmp_path / "zone"
    calendar = _weekly_zone(source, {"predictions": 0.3, "sessions": 0.2}, quiet=(0, 1))
    inf = infer(source)
    config = parse_config(yaml.safe_load(render(inf)))
    # by hand: a Monday's trailing 7 days are the Monday and Tuesday before (60 rows) and five days of 200, a
    # Tuesday's the Tuesday before, five days of 200 and the Monday: median 200 either way, so 60 is 70% below
    # (sessions: 40 rows, 80%), outside the default +-0.5 band (+-100 rows; 4 x sqrt(200) is 57). Judged weekly,
    # against 200 x their share of it the weeks before (0.3; sessions 0.2): in the band; the 20-row last day (a
    # Wednesday, share 1) is not
    assert config.gates.volume.tables["predictions"].weekly is True
    assert config.gates.volume.tables["sessions"].weekly is True
    assert "volume_change" not in config.models["m"].alerts
    judged = [d for d in calendar[7:] if d.weekday() in (0, 1)]  # a full trailing week before them
    assert len(judged) == 10
    said = review(inf)
    assert (
        "gates.volume.tables.predictions: weekly written for a weekly cycle (model m): 10 of the 11 day(s) "
        "the default band (±0.5) would hold back are Mondays or Tuesdays (a median 60 rows on Mondays and "
        f"Tuesdays, 200 on the other days; the deepest day (a Monday) 70% below its trailing median); {WEEKLY_JUDGED}"
    ) in said
    assert any(
        line.startswith(
            "gates.volume.tables.sessions: weekly written for a weekly cycle: 10 of the 11 day(s) the "
            "default band (±0.5) would hold back are Mondays or Tuesdays (a median 40 rows on Mondays and Tuesdays"
        )
        for line in said
    )
    # no Monday or Tuesday held back: only the part-way last day
    assert [f"({calendar[-1]})" in line for line in _held(said)] == [True, True]


@pytest.mark.parametrize(
    ("quiet", "one_off"),
    [
        ((0, 1), ()),  # Mondays and Tuesdays at 70% of the other days: inside the default band
        ((), (14, 24, 28)),  # two Mondays of six and a Thursday at 30%: one-off quiet days, not a weekly cycle
    ],
)
def test_quiet_days_within_the_band_or_not_weekly_get_no_weekly_band(tmp_path, quiet, one_off):
    source = tmp_path / "zone"
    share = 0.7 if quiet else 0.3
    calendar = _weekly_zone(source, {"predictions": share, "sessions": share}, quiet=quiet, one_off=one_off)
    assert [calendar[i].weekday() for i in one_off] == [0, 3, 0][: len(one_off)]
    inf = infer(source)
    text = render(inf)
    assert parse_config(yaml.safe_load(text)).gates.volume.tables == {} and "weekly" not in text
    said = review(inf)
    assert not [line for line in said if "weekly" in line]
    # the one-off days are held back as before (60 rows vs a trailing median of 200), with the last day
    held = [str(calendar[i]) for i in one_off] + [str(calendar[-1])]
    assert _held(said) == [
        f"gates.volume: the volume gate will hold back {len(held)} day(s) of {t} ({', '.join(held)}): rows far below "
        f"the trailing median; {held_remedy(t)}"
        for t in ("predictions", "sessions")
    ]


def test_the_labelled_share_says_it_is_of_the_predictions_old_enough_and_how_many_are_labelled_so_far(tmp_path):
    # a trial's labels, 30-45 days late, were 37% of the predictions in the landing zone, and init said "100%
    # labelled": the share of the predictions old enough for their labels, without saying so
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": START}))
    days, per_day = 40, 100
    preds = pd.DataFrame(
        [
            (f"p{d}-{i}", "m", "v1", f"u{i}", START + timedelta(days=d, minutes=i), 0.4)
            for d in range(days)
            for i in range(per_day)
        ],
        columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score"],
    )
    _write(source, "predictions", preds)
    # 4 in 5 predictions labelled, 5 to 10 days late; the export stops at the predictions' last day
    i = np.arange(len(preds)) % per_day
    labels = pd.DataFrame(
        {
            "prediction_id": preds["prediction_id"],
            "label": 1,
            "labeled_at": preds["predicted_at"] + pd.to_timedelta(5 + i % 6, unit="D"),
            "label_source": "implicit",
        }
    )[(i % 5 != 0)]
    labels = labels[labels["labeled_at"] < START + timedelta(days=days)]
    _write(source, "labels", labels)
    # oracle: the label horizon is the p99 delay rounded up; predictions made a horizon or more before the
    # last label are old enough for their labels
    delay = labels["labeled_at"] - preds.set_index("prediction_id").loc[labels["prediction_id"], "predicted_at"].values
    horizon = math.ceil(np.quantile(delay.dt.total_seconds() / 86400, 0.99))
    mature = preds[preds["predicted_at"] <= labels["labeled_at"].max() - timedelta(days=horizon)]
    share = mature["prediction_id"].isin(labels["prediction_id"]).mean()
    assert horizon == 10 and len(mature) == 3000 and share == 0.8 and len(labels) < 0.7 * len(preds)
    said = review(infer(source))
    assert (
        f"models.m: about {per_day * share:.0f} labelled predictions a day (median {per_day} a day; labelled: "
        f"{share:.0%} of the {len(mature)} predictions old enough for their labels, {len(labels)} of all "
        f"{len(preds)} so far): precision and recall alerts are judged only on days with 300"
    ) in "\n".join(said)


def test_groups_a_bias_window_would_hold_too_few_labels_of_are_named_per_attribute_and_intersection(tmp_path):
    # ~221 labelled a day judged both ethnicity groups, but two ethnicity x gender groups (~300 in the window) were
    # left out unsaid, while the review spoke of the model's total only
    source = tmp_path / "zone"
    n_users, days = 100, 30
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_users)],
            "signup_at": START,
            "ethnicity": ["a" if i < 70 else "b" for i in range(n_users)],
            "gender": [None if i == 99 else "f" if i % 5 < 3 else "m" for i in range(n_users)],  # a null: 'unknown'
        }
    )
    _write(source, "users", users)
    # every user scored once a day, every prediction labelled the next day
    preds = pd.DataFrame(
        [
            (f"p{d}-{i}", "m", "v1", f"u{i}", START + timedelta(days=d, minutes=i), 0.4, 0.5)
            for d in range(days)
            for i in range(n_users)
        ],
        columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"],
    )
    _write(source, "predictions", preds)
    _write(source, "labels", _positive_a_day_later(preds))
    inf = infer(source)
    assert inf.proposed_attributes == ["ethnicity", "gender"]
    assert "# intersections: [[ethnicity, gender]]" in render(inf)

    # by hand: 100 predictions a day, all labelled: a 14-day window holds 1,400 labelled predictions, shared as
    # the groups share the labels (user i: ethnicity a below 70, gender f when i % 5 < 3, u99 unknown)
    window = 100 * 14
    grouped = preds.merge(users, on="user_id").fillna({"gender": "unknown"})
    grouped["ethnicity x gender"] = grouped["ethnicity"] + "|" + grouped["gender"]

    def under(column: str) -> str:
        expected = grouped[column].value_counts() * window / len(grouped)
        few = expected[expected < 500].sort_values(ascending=False)
        return ", ".join(f"{g} (~{n:.0f})" for g, n in few.items())

    assert under("ethnicity") == "b (~420)" and under("gender") == "unknown (~14)"
    assert under("ethnicity x gender") == "a|m (~392), b|f (~252), b|m (~154), b|unknown (~14)"
    said = review(inf)
    assert (
        "models.m: groups under bias.min_labelled (500 labelled predictions) in a 14-day window, left out of the "
        f"label-based verdicts: users.ethnicity: {under('ethnicity')}; users.gender: {under('gender')}; "
        f"users.ethnicity x gender: {under('ethnicity x gender')}"
    ) in said
    # the model's 100 labelled a day are said for its precision and recall alerts, no longer for fairness
    [alerts] = [line for line in said if "alerts.min_labelled" in line]
    assert alerts.startswith("models.m: about 100 labelled predictions a day") and "fairness" not in alerts


def test_an_experiment_whose_control_arm_its_model_scored_is_named_in_the_review(tmp_path):
    # a trial's experiment named model M while M had scored every one of its 2,814 control-arm users: the summary
    # credited the lift to M, and nothing said the holdout was no holdout
    source = _experiment_zone(tmp_path, users=40)
    assignments = pd.DataFrame(
        {
            "experiment_id": "e1",
            # u39 first assigned t, then c: its first assignment counts, as in staging
            "user_id": [f"u{i}" for i in range(40)] + ["u39"],
            "variant": ["c"] * 10 + ["t"] * 30 + ["c"],
            "assigned_at": [START] * 40 + [START + timedelta(hours=1)],
        }
    )
    _write(source, "assignments", assignments)
    later, earlier = START + timedelta(days=1), START - timedelta(days=1)
    # by hand: control users u0..u9; m scored u0, u1, u2 after their assignment (exposed), u3 only before it, u4
    # by another model; the treated u10..u39 are scored as they should be: 3 of 10 control-arm users exposed
    scored = [("u0", "m", later), ("u1", "m", later), ("u2", "m", later), ("u2", "m", later + timedelta(hours=2))]
    scored += [("u3", "m", earlier), ("u4", "other", later)] + [(f"u{i}", "m", later) for i in range(10, 40)]
    predictions = pd.DataFrame(
        {
            "prediction_id": [f"p{k}" for k in range(len(scored))],
            "model_id": [m for _, m, _ in scored],
            "model_version": "v1",
            "user_id": [u for u, _, _ in scored],
            "predicted_at": [t for _, _, t in scored],
            "score": 0.3,
        }
    )
    _write(source, "predictions", predictions)
    said = [line for line in review(infer(source)) if line.startswith("experiments.e1")]
    assert said == [
        "experiments.e1: 3 of 10 control-arm users (30.0%) have predictions of model m made after their assignment: "
        "a holdout must never be scored, so the lift is not m's value and its results are marked not trustworthy; "
        "name the model the experiment really tests, or keep the holdout out of m's scoring"
    ], said
    _write(source, "predictions", predictions[predictions["user_id"].isin([f"u{i}" for i in range(3, 40)])])
    assert not any(line.startswith("experiments.e1") for line in review(infer(source)))


def test_an_indicator_of_a_protected_group_is_proposed_with_its_groups_named_by_its_values(zone):
    # a trial's legislators: `leg_black` (0/1) got no protected attribute proposed, init matching whole names only
    source, users, _, _ = zone
    n = len(users)
    _write(
        source,
        "users",
        users.assign(
            leg_black=[i % 2 for i in range(n)],
            isFemale=["yes" if i % 3 else "no" for i in range(n)],
            is_hispanic=["true" if i % 4 else "false" for i in range(n)],
            nonwhite=[i % 2 for i in range(n)],  # a trial's census column: the group 'non' + white
            hisp=[(i // 2) % 2 for i in range(n)],  # the CPS extracts' abbreviation (a trial: listed, not proposed)
            blackberry_user=[i % 2 for i in range(n)],  # 'black' inside a word: no group's name
            white_score=[i % 5 for i in range(n)],  # a group's name, five values: no indicator
        ),
    )
    inf = infer(source)
    by_name = {a.column: a for a in inf.attributes}
    assert {"leg_black", "isFemale", "is_hispanic", "nonwhite", "hisp"} <= set(inf.proposed_attributes)
    assert not {"blackberry_user", "white_score"} & set(inf.proposed_attributes)
    assert by_name["leg_black"].indicator == ("1", "0") and by_name["isFemale"].indicator == ("yes", "no")
    assert by_name["is_hispanic"].indicator == ("true", "false") and by_name["white_score"].indicator is None
    text = render(inf)
    assert "#   leg_black: 2 groups: 0, 1 (an indicator of a protected group: groups 1 vs 0, proposed, REVIEW)" in text
    said = review(inf)
    assert (
        "protected_attributes: leg_black is an indicator (groups 1 vs 0): its verdicts compare the users it marks "
        "(group '1') with the others (group '0'); check which value marks the group"
    ) in said
    assert any(line.startswith("protected_attributes: isFemale is an indicator (groups yes vs no)") for line in said)


def test_a_correction_landing_after_the_horizon_is_said_with_the_horizon_that_counts_it(tmp_path):
    # a trial: init set label_horizon_days from first labels (61), and a human review's correction 63 days after
    # its prediction was never read, its wrong first label standing in every metric, unsaid
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(20)], "signup_at": START}))
    at = [START + timedelta(days=i // 5, hours=i % 5) for i in range(200)]
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(200)],
            "model_id": "m",
            "model_version": "v1",
            "user_id": [f"u{i % 20}" for i in range(200)],
            "predicted_at": at,
            "score": 0.6,
            "threshold": 0.5,
        }
    )
    first = pd.DataFrame(
        {"prediction_id": preds["prediction_id"], "label": 1, "labeled_at": [t + timedelta(days=3) for t in at]}
    )
    corrections = pd.DataFrame(
        {
            "prediction_id": ["p7", "p9", "p11"],
            "label": 0,
            "labeled_at": [
                at[7] + timedelta(days=2, hours=30),
                at[9] + timedelta(days=40),
                at[11] + timedelta(days=63),
            ],
        }
    )
    _write(source, "predictions", preds)
    _write(source, "labels", pd.concat([first, corrections], ignore_index=True))
    inf = infer(source)
    [m] = inf.models
    # by hand: first labels 3 days late (the horizon 3); p9's and p11's corrections land 40 and 63 calendar days
    # after their predictions' days, p7's 3 (within the horizon: read)
    assert m.label_horizon_days == 3
    calendar = [(corrections["labeled_at"][i].date() - at[j].date()).days for i, j in enumerate((7, 9, 11))]
    assert m.late_corrections == (sum(d > 3 for d in calendar), max(calendar)) == (2, 63)
    assert (
        "models.m.label_horizon_days: 2 prediction(s) have a later label event (a correction?) beyond the 3 days "
        "written (the horizon follows first labels), the latest 63 days after its prediction: runs never read them, "
        "their earlier label stands; set label_horizon_days to 63 to count them"
    ) in review(inf)


def test_the_zone_example_is_never_the_projects_own_zone():
    # a trial set to Europe/Berlin was told "if your systems write another zone's local time (e.g. Europe/Berlin)"
    from orchestration.lib.project_init import _zone_example

    assert _zone_example([], "UTC") == "e.g. Europe/Berlin"
    assert _zone_example([], "Europe/Berlin") == "e.g. America/New_York"
    summer = ["labels 2026-07-01T09:00:00+02:00"]
    assert _zone_example(summer, "UTC") == "times with an offset here carry +02:00: e.g. Europe/Berlin"
    assert _zone_example(summer, "Europe/Berlin") == "times here carry +02:00"  # Berlin alone has it in July


def test_an_id_column_of_few_values_is_a_candidate_and_one_unique_per_user_is_not(zone):
    # a trial: store_id (a grouping a user may judge) was dropped unsaid with the identifiers
    source, users, _, _ = zone
    n = len(users)
    _write(source, "users", users.assign(store_id=[f"s{i % 4}" for i in range(n)], account_id=range(n)))
    inf = infer(source)
    by_name = {a.column: a for a in inf.attributes}
    assert by_name["store_id"].distinct == 4 and not by_name["store_id"].proposed  # listed, not a protected name
    assert "account_id" not in by_name and "user_id" not in by_name
    assert "#   store_id: 4 groups: s0, s1, s2, s3" in render(inf)
    assert any(line.startswith("  users.store_id: 4 distinct value(s)") for line in describe(inf))


def test_coded_groups_of_a_parquet_float_column_read_as_whole_numbers(tmp_path):
    # a trial's Parquet users: race coded 1.0, 2.0 was proposed as '1.0, 2.0' (and so named in the marts)
    source = tmp_path / "zone"
    n = 60
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "signup_at": START,
            "race": [float(1 + i % 3) for i in range(n)],
            "leg_black": [float(i % 2) for i in range(n)],
            "share": [0.5 + i % 2 for i in range(n)],  # a fraction keeps its decimals
        }
    )
    _write(source, "users", users, "parquet")
    preds = pd.DataFrame(
        [(f"p{i}", "m", "v1", f"u{i}", START + timedelta(minutes=i), 0.4, 0.5) for i in range(n)],
        columns=["prediction_id", "model_id", "model_version", "user_id", "predicted_at", "score", "threshold"],
    )
    _write(source, "predictions", preds)
    _write(
        source,
        "labels",
        pd.DataFrame({"prediction_id": preds["prediction_id"], "label": 1, "labeled_at": START + timedelta(days=1)}),
    )
    inf = infer(source)
    by_name = {a.column: a for a in inf.attributes}
    assert by_name["race"].values == ["1", "2", "3"] and by_name["leg_black"].indicator == ("1", "0")
    assert by_name["share"].values == ["0.5", "1.5"]
    assert "#   race: 3 groups: 1, 2, 3 (a protected name: proposed, REVIEW)" in render(inf)
    # the labelled predictions per group, under the names the marts give them: 20 users of each race code
    assert inf.group_labelled["m"][("race",)] == {"1": 20, "2": 20, "3": 20}
    assert inf.group_labelled["m"][("leg_black",)] == {"0": 30, "1": 30}


def _batch_zone(
    source: Path, weeks: int, per_batch: int | list[int], every: int = 1, offset: int = 0, versions: list[str] = ()
) -> pd.DataFrame:
    """ISLR's OJ purchases as a user laid them out: predictions of model m (labelled an hour later) landing in one
    batch of ``per_batch`` rows (or the list's, batch by batch; and of the ``versions``' model version, else v1) every
    ``every`` days from START + ``offset`` days, ``weeks`` weeks long."""
    days = [START + timedelta(days=offset + d) for d in range(0, 7 * weeks, every)]
    sizes = per_batch if isinstance(per_batch, list) else [per_batch] * len(days)
    at = [day + timedelta(hours=9, minutes=k) for day, n in zip(days, sizes) for k in range(n)]
    version = [v for i, n in enumerate(sizes) for v in [versions[i] if versions else "v1"] * n]
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": START}))
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(len(at))],
            "model_id": "m",
            "model_version": version,
            "user_id": [f"u{i % 100}" for i in range(len(at))],
            "predicted_at": at,
            "score": 0.3,
        }
    )
    _write(source, "predictions", preds)
    labels = preds[["prediction_id"]].assign(labeled_at=preds["predicted_at"] + timedelta(hours=1), label=1)
    _write(source, "labels", labels.assign(label_source="implicit"))
    return preds


def test_a_weekly_batch_source_is_said_and_its_windows_and_volumes_are_counted_in_batches(tmp_path):
    # a trial laid OJ out as Monday batches: init said 'median 0 rows a day', a 7-day drift reference of one batch
    # and 'about 0 predictions' in a 14-day fairness window
    source = tmp_path / "zone"
    _batch_zone(source, weeks=20, per_batch=30, every=7, offset=2)  # every Wednesday
    inf = infer(source)
    assert inf.tables["predictions"].daily_median == 0  # the median day is empty: no daily unit fits
    text = render(inf)
    config = parse_config(yaml.safe_load(text))
    # by hand: PSI needs 200 values in the reference: ceil(200 / 30) = 7 weekly batches = 49 days; fairness needs
    # 500 labelled predictions: ceil(500 / 30) = 17 batches = 119 days (every prediction is labelled)
    assert config.models["m"].drift_reference.first_days == 7 * math.ceil(200 / 30) == 49
    assert config.bias.window_days == 7 * math.ceil(500 / 30) == 119
    assert "20 batches of a median 30 predictions" in text and "every Wednesday" in text
    assert "a 119-day window holds about 510 predictions" in text  # 17 batches of 30 (of the 600 made)
    said = review(inf)
    assert any(
        line.startswith(
            "predictions: rows land in weekly batches, every Wednesday, 20 batches of a median 30 rows, the other "
            "weekdays empty"
        )
        and line.endswith(
            "a missing batch (its weekday empty a week after a batch of more than 10.4 rows) is a warning (it blocks "
            "nothing)"
        )
        for line in said
    )
    # a 7-day PSI pool holds one batch of 30: the model's own pool is the reference's 7 batches (210 >= 200)
    assert config.models["m"].alerts["psi"] == Rule(pool_days=49)
    [psi] = [line for line in said if line.startswith("models.m: median 30 predictions a batch: drift (PSI)")]
    # by hand: first judged 49 + 49 days after the first batch; 3 pooled verdicts once per 49 days: 147 days
    assert psi.endswith(
        "init writes models.m.alerts.psi.pool_days: 49 (7 batch(es), about 210 predictions; the default 7 days hold "
        "about 30) and drift_reference first_days 49: a smaller day is judged on its version's last 49 days pooled "
        "(not capped at the 28 days of a daily model: fewer weeks hold too few to judge at all); a version's drift is "
        "first judged about 98 days after its first batch (the pool follows its reference), and retraining counts a "
        "pooled verdict once per 49-day pool: 3 persisting verdicts (retraining.persist_days) take 147 days (21 weeks)"
    )
    assert not [line for line in said if "a day" in line and line.startswith("models.m")]
    assert not [line for line in said if "will hold back" in line]  # the other weekdays are no outage
    assert any("weekly batches over 134 day(s): every Wednesday" in line for line in describe(inf))


def test_a_small_daily_models_own_psi_pool_is_whole_weeks_up_to_four(tmp_path):
    # by hand: 10 a day, 70 a week: 200 values take 3 weeks (210), written; 5 a day, 35 a week: 6 weeks, beyond
    # the 28 days init writes (a longer pool dilutes a new drift in old values), so the default stays, said
    for per_day, written in ((10, 21), (5, None)):
        source = tmp_path / f"zone{per_day}"
        _batch_zone(source, weeks=4, per_batch=per_day)
        inf = infer(source)
        model = parse_config(yaml.safe_load(render(inf))).models["m"]
        assert model.alerts.get("psi") == (written and Rule(pool_days=written))
        assert model.drift_reference.first_days == (written or 7)
        [psi] = [line for line in review(inf) if "drift (PSI)" in line]
        assert psi.endswith(
            f"its version's last {written} days pooled"
            if written
            else "even pooled over 7 days (alerts.rules.psi.pool_days); 200 values take about 40 days, more than the "
            "longest pool init writes (28 days: a longer one shows a new drift late), so it keeps the defaults; to "
            "judge drift anyway, set models.m.alerts.psi.pool_days and drift_reference.first_days to about 40 (its "
            "140 predictions so far are fewer than the 400 a version's reference and pool of 200 each need: none of "
            "its days can be judged unless it scores on)"
        )


def test_a_version_too_small_for_a_reference_and_a_pool_is_said_so_beside_the_days_to_set(tmp_path):
    # a trial's two versions of ~340 predictions each were told to set 140-day pools: no split of 340 holds 200 + 200
    _batch_zone(tmp_path, weeks=12, per_batch=5, versions=["v1"] * 42 + ["v2"] * 42)  # by hand: 420, 210 a version
    [psi] = [line for line in review(infer(tmp_path)) if "drift (PSI)" in line]
    assert psi.endswith(
        "set models.m.alerts.psi.pool_days and drift_reference.first_days to about 40 (its 420 predictions so far "
        "over 2 versions (about 210 each) are fewer than the 400 a version's reference and pool of 200 each need: "
        "none of its days can be judged unless it scores on)"
    )


def test_a_model_too_small_for_the_bias_window_is_told_how_far_the_window_would_have_to_go(tmp_path):
    # a trial asked for numbers beside "widen bias.window_days or lower bias.min_labelled"
    _batch_zone(tmp_path, weeks=4, per_batch=10)
    [line] = [line for line in review(infer(tmp_path)) if line.startswith("bias: ")]
    # by hand: 10 a day for 28 days; 500 / 10 = 50 days; the default 14-day window holds 140
    assert line.startswith(
        "bias: m make(s) fewer than 500 predictions in 14 days (m: 280 predictions over 28 days, 500 take about 50 "
        "days): widen bias.window_days or lower bias.min_labelled"
    )


def test_a_daily_source_and_a_every_other_day_source_get_the_daily_settings(tmp_path):
    # rows every day (or every other day: no weekday is empty week after week) are no weekly batch
    for every in (1, 2):
        source = tmp_path / f"zone{every}"
        _batch_zone(source, weeks=4, per_batch=30, every=every)
        inf = infer(source)
        assert inf.tables["predictions"].batch is None and inf.models[0].batch is None
        text = render(inf)
        config = parse_config(yaml.safe_load(text))
        # by hand: every day's 30 fill a 7-day pool and reference (210); every other day's, 3 or 4 days of 30 in any
        # 7 days (90 or 120), do not: two weeks (210 or 240) do, written as the model's own pool and reference
        weeks = 1 if every == 1 else 2
        assert config.models["m"].drift_reference.first_days == 7 * weeks and config.bias.window_days == 14
        assert config.models["m"].alerts.get("psi") == (None if every == 1 else Rule(pool_days=14))
        assert "batch" not in text and not [line for line in review(inf) if "batch" in line]


def test_a_batch_models_drift_reference_holds_min_count_in_each_versions_first_weeks_counted(tmp_path):
    # a trial: init sized the reference from the median batch (70 days, "about 205 predictions") while v1's first
    # 70 days held 138 (early batches of 8-15 rows): v1's drift was never judged in 18 weeks
    source = tmp_path / "zone"
    sizes = [10] * 8 + [30] * 31  # 39 Monday batches: v1's first 8 small
    versions = ["v1"] * 12 + ["v2"] * 24 + ["v3"] * 3  # v3 launched two weeks before the zone ends
    _batch_zone(source, weeks=39, per_batch=sizes, every=7, versions=versions)
    inf = infer(source)
    # by hand: the median batch is 30, 7 of them 210 (49 days); v1's first 7 weeks hold 70, its first 12 weeks 8 x
    # 10 + 4 x 30 = 200: 84 days; v2's first 12 weeks 360; v3's 3 batches 90, the zone holding its first 15 days
    model = parse_config(yaml.safe_load(render(inf))).models["m"]
    assert model.drift_reference.first_days == 84 and model.alerts["psi"] == Rule(pool_days=49)
    said = review(inf)
    [batch] = [line for line in said if line.startswith("models.m: scored in weekly batches")]
    assert "drift_reference first_days 84: each version's first 84 days (12 weeks) hold v1 200, v2 360, v3 90 " in batch
    assert any(
        line.startswith(
            "models.m.drift_reference: version v3's first 84 days hold only 90 (so far: the landing zone holds its "
            "first 15 days): its drift is reported, not judged"
        )
        for line in said
    )
    # by hand: no v1 days follow its 84-day reference; v2's 12 weeks after it hold 7 batches (210 >= 200) in a
    # 49-day pool; v3 has none after it
    [psi] = [line for line in said if line.startswith("models.m: median 30 predictions a batch: drift (PSI)")]
    assert "first judged about 133 days after its first batch" in psi
    assert psi.endswith(
        "no pool of v1 or v3 after its reference filled: its drift would not have been judged "
        "(a fixed drift_reference {start, end} or a lower alerts.rules.psi.min_count judges sooner)"
    )


def test_a_missing_weekly_batch_is_named_as_the_warning_its_gate_gives(tmp_path):
    # a trial's 2025-12-01 batch was missing from the landing zone: init said "is held back" three times though the
    # predictions and labels gates only warn of a stale day, and named no day
    source = tmp_path / "zone"
    preds = _batch_zone(source, weeks=8, per_batch=30, every=7)
    missing = (START + timedelta(days=35)).date()  # the sixth Monday
    kept = preds[preds["predicted_at"].dt.date != missing]
    _write(source, "predictions", kept)
    labels = kept[["prediction_id"]].assign(labeled_at=kept["predicted_at"] + timedelta(hours=1), label=1)
    _write(source, "labels", labels.assign(label_source="implicit"))
    said = review(infer(source))
    # by hand: 30 rows a week before > 10.4: stale, for both tables; the freshness of both is a warning
    for table in ("predictions", "labels"):
        assert (
            f"gates.volume: the freshness rule will warn of 1 day(s) of {table} ({missing}): no rows after steady days"
        ) in "\n".join(said)
        [line] = [line for line in said if line.startswith(f"{table}: rows land in weekly batches")]
        assert line.endswith("is a warning (it blocks nothing)")
    assert not [line for line in said if "will hold back" in line]


def test_labels_naming_predictions_the_landing_zone_lacks_are_said_with_the_days_their_gate_holds_back(tmp_path):
    # a trial: 469 predictions missing from their export left 456 labels pointing at nothing; the labels gate held
    # back 11 label days whole (13,635 valid labels with them) and init said nothing
    source = tmp_path / "zone"
    _write(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(10)], "signup_at": START}))
    ids = [f"p{i}" for i in range(300)]
    _write(
        source,
        "predictions",
        pd.DataFrame(
            {
                "prediction_id": ids,
                "model_id": "m",
                "model_version": "v1",
                "user_id": [f"u{i % 10}" for i in range(300)],
                "predicted_at": [START + timedelta(minutes=i) for i in range(300)],
                "score": 0.3,
            }
        ),
    )
    # three label days of 100 rows: 15 unknown on the first (above 1% and 10 rows), 3 on the second (under 10)
    named = (
        ids[:85] + [f"gone{i}" for i in range(15)] + ids[85:182] + [f"gone{i}" for i in range(15, 18)] + ids[182:282]
    )
    days = [START + timedelta(days=30 + i // 100, minutes=i % 100) for i in range(300)]
    _write(source, "labels", pd.DataFrame({"prediction_id": named, "labeled_at": days, "label": 1}))
    line = next(line for line in review(infer(source)) if line.startswith("labels.prediction_id"))
    # by hand: 18 of 300 rows; the first day's 15 > max(1% x 100, 10), the second's 3 is not
    first = (START + timedelta(days=30)).date()
    assert line.startswith(
        "labels.prediction_id: 18 of 300 label rows name a prediction the predictions files do not have: the labels "
        f"gate (prediction_known) holds back a day where they exceed gates.rows (1% and 10 rows), 1 day(s) here "
        f"({first}), every label of those days with them"
    ), line
    _write(source, "labels", pd.DataFrame({"prediction_id": ids, "labeled_at": days, "label": 1}))
    assert not [line for line in review(infer(source)) if line.startswith("labels.prediction_id")]


def test_labels_later_than_the_p99_all_of_one_class_keep_the_horizon_to_the_latest(tmp_path):
    # a trial's mortality score: every label after 340 days (the p99) was a death, up to 386 days; init proposed 340,
    # so precision and recall were read without 13 deaths (and "labels complete" while they still landed)
    # (its predictions carry no model_version: init stopped on a binder error before reading them)
    source = tmp_path / "zone"
    made = pd.Timestamp("2025-03-03 10:00")
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(400)],
            "model_id": "risk",
            "user_id": [f"u{i}" for i in range(400)],
            "predicted_at": made,
            "score": 0.5,
        }
    )
    late = {f"p{i}": 100 + i - 397 for i in range(397, 400)}  # 100-102 days later, after the p99 (10 days)
    labels = pd.DataFrame(
        {
            "prediction_id": preds["prediction_id"],
            "label": [1 if p in late else i % 2 for i, p in enumerate(preds["prediction_id"])],
            "labeled_at": [made + pd.Timedelta(days=late.get(p, 10)) for p in preds["prediction_id"]],
        }
    )
    _write(source, "predictions", preds)
    _write(source, "labels", labels)
    (m,) = infer(source).models
    assert math.ceil(m.delay_p99_days) == 10 and m.late_one_class == (3, 1)  # by hand: 3 of 400 later, all 1
    assert m.label_horizon_days == 102
    written = render(infer(source))
    assert (
        "# the 3 labels more than 10 calendar days after their prediction's day, which a horizon of 10 (the p99, "
        "10.00 days, rounded up) would drop, are all 1: dropping only that class" in written
    )
    assert "label_horizon_days: 102  # the latest label's calendar days" in written
    # one of them 0: both classes land late, the p99 as before
    _write(
        source,
        "labels",
        labels.assign(label=[0 if p == "p399" else v for p, v in zip(labels["prediction_id"], labels["label"])]),
    )
    (m,) = infer(source).models
    assert m.late_one_class is None and m.label_horizon_days == 10


def test_one_hot_indicator_columns_are_suggested_together_not_as_a_mixing_pair(zone):
    # a trial's black_male, white_male, black_female (white women: none of them): init suggested the pair
    # [black_female, black_male], whose '0|0' mixed white men and white women
    source, users, _, _ = zone
    n = len(users)
    kind = [i % 4 for i in range(n)]  # 0: black man, 1: white man, 2: black woman, 3: white woman
    _write(
        source,
        "users",
        users.assign(
            black_male=[int(k == 0) for k in kind],
            white_male=[int(k == 1) for k in kind],
            black_female=[int(k == 2) for k in kind],
        ),
    )
    inf = infer(source)
    assert {"black_male", "white_male", "black_female"} <= set(inf.proposed_attributes)
    assert inf.one_hot == [c for c in inf.proposed_attributes if c in ("black_male", "white_male", "black_female")]
    text = render(inf)
    assert f"# intersections: [[{', '.join(inf.one_hot)}]]" in text
    assert "0|0|0 being none of them; a pair of them would mix groups" in text
    # indicators that do mark one user twice are no one-hot family: the first two, as before
    _write(
        source,
        "users",
        users.assign(black=[i % 2 for i in range(n)], female=[(i // 2) % 2 for i in range(n)]),
    )
    inf = infer(source)
    assert inf.one_hot == [] and "a pair of them would mix groups" not in render(inf)
