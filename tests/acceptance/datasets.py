"""Real public data sets, shipped inside PyPI packages, laid out as a user would export them.

Each ``write_*`` writes one folder per contract table with one CSV each (no dates in the file names, no
truth.json: exactly what a user's export looks like; Fair's predictions come as one Parquet file a day, as
a scoring service would drop them) and returns the frames it wrote, so the tests can compute their oracles
from the same raw rows. No package is imported: importlib.metadata finds the file inside the installed
wheel (lifelines' own import is heavy).
"""

from __future__ import annotations

import importlib.metadata
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROSSI_START = datetime(2025, 3, 3)  # first release day
ROSSI_RELEASE_DAYS = 30
ROSSI_MODEL = "rearrest_risk"
ROSSI_THRESHOLD = 0.3
ROSSI_FEATURES = ["fin", "age", "wexp", "mar", "paro", "prio"]  # the deployed model does not see race

THORNTON_START = datetime(2025, 6, 2)
THORNTON_DAYS = 40
THORNTON_EXPERIMENT = "hiv_results_incentive"
THORNTON_MODEL = "cash_incentive"  # the experiment's model_id names the treatment
# Three arms by the incentive's size: none, under a dollar, a dollar or more. The package does not ship the
# design's assignment probabilities; these are the realised shares of the respondents with a known treatment
# and outcome, to two decimals.
THORNTON_SHARES = {"no_incentive": 0.22, "small_incentive": 0.40, "large_incentive": 0.38}


NSW_START = datetime(2025, 4, 7)
NSW_DAYS = 20
NSW_EXPERIMENT = "job_training"
NSW_MODEL = "training_offer"
NSW_PRE_DAYS = 3  # a trainee's 1975 earnings are booked this many days before assignment (in the pre-period)

FAIR_START = datetime(2025, 3, 1)
FAIR_DAYS = 45
# two models score the same people: a logistic regression and a depth-4 tree
FAIR_MODELS = ("marriage_risk_lr", "marriage_risk_tree")
FAIR_FEATURES = ["rate_marriage", "age", "yrs_married", "children", "religious", "educ"]


def _packaged(dist: str, path: str) -> Path:
    file = Path(str(importlib.metadata.distribution(dist).locate_file(path)))
    if not file.is_file():
        raise FileNotFoundError(f"{file}: not in the installed {dist} wheel (pip install -e '.[test]')")
    return file


def rossi() -> pd.DataFrame:
    """432 released prisoners followed 52 weeks (Rossi, Berk & Lenihan 1980), as lifelines ships it."""
    return pd.read_csv(_packaged("lifelines", "lifelines/datasets/rossi.csv"))


def thornton() -> pd.DataFrame:
    """Thornton (2008): randomised cash incentives to learn one's HIV result, as causaldata ships it."""
    return pd.read_stata(_packaged("causaldata", "causaldata/thornton_hiv/thornton_hiv.dta"))


def _spread(rng, n: int, start: datetime, days: int, hour: int, minutes: int) -> pd.Series:
    """``n`` people over ``days`` days from ``start``, about as many each day in a random order, each at ``hour``
    plus up to ``minutes``."""
    day = rng.permutation(np.arange(n) % days)
    return pd.Series([start + timedelta(days=int(d), hours=hour) for d in day]) + pd.to_timedelta(
        rng.integers(0, minutes, n), unit="min"
    )


def _write(source: Path, tables: dict[str, pd.DataFrame]) -> None:
    for name, frame in tables.items():
        (source / name).mkdir(parents=True, exist_ok=True)
        frame.to_csv(source / name / f"{name}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")


def write_rossi(source: Path) -> dict[str, pd.DataFrame]:
    """Monitoring only: users, predictions of a logistic-regression risk model, labels months late.

    Release days are spread over 30 days; a person's label is the arrest indicator, known at the arrest
    (release + week * 7 days) or at the end of the 52-week follow-up: weeks to a year after the prediction.
    """
    from sklearn.linear_model import LogisticRegression

    raw = rossi()
    rng = np.random.default_rng(20250303)
    n = len(raw)
    day = rng.permutation(np.arange(n) % ROSSI_RELEASE_DAYS)
    release = pd.Series([ROSSI_START + timedelta(days=int(d)) for d in day])
    # the "deployed model": fitted once on the whole cohort, as a vendor's model would have been
    model = LogisticRegression(max_iter=5000).fit(raw[ROSSI_FEATURES], raw["arrest"])
    score = model.predict_proba(raw[ROSSI_FEATURES])[:, 1]
    ids = [f"person_{i:03d}" for i in range(n)]
    predicted_at = release + pd.to_timedelta(9 * 60 + rng.integers(0, 8 * 60, n), unit="min")
    users = pd.DataFrame(
        {
            "user_id": ids,
            "signup_at": release,
            "race": np.where(raw["race"] == 1, "black", "other"),
            "age": raw["age"],
            "fin": raw["fin"],
            "wexp": raw["wexp"],
            "mar": raw["mar"],
            "paro": raw["paro"],
            "prio": raw["prio"],
        }
    )
    predictions = pd.DataFrame(
        {
            "prediction_id": [f"pred_{i:03d}" for i in range(n)],
            "model_id": ROSSI_MODEL,
            "model_version": "v1",
            "user_id": ids,
            "predicted_at": predicted_at,
            "score": score,
            "threshold": ROSSI_THRESHOLD,
            "feature_age": raw["age"].astype(float),
            "feature_prio": raw["prio"].astype(float),
        }
    )
    labels = pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"],
            "label": raw["arrest"],
            "labeled_at": predicted_at + pd.to_timedelta(raw["week"] * 7, unit="D"),
            "label_source": "implicit",
        }
    )
    tables = {"users": users, "predictions": predictions, "labels": labels}
    _write(source, tables)
    return tables | {"rossi": raw}


def write_thornton(source: Path) -> dict[str, pd.DataFrame]:
    """A/B/C experiment: a small or a large incentive (two treatment arms) vs none; learning the result (got) is
    the conversion.

    Respondents with a known treatment and outcome are assigned over 40 days (about 72 a day); each has a
    session at assignment, and one who learns the result does so at a centre one to three days later: a
    completed order without a session (a few dozen conversions a day), so the last days hold orders and no
    sessions or assignments.
    """
    raw = thornton().dropna(subset=["any", "got"]).reset_index(drop=True)
    rng = np.random.default_rng(20250602)
    n = len(raw)
    ids = [f"resp_{i:04d}" for i in range(n)]
    assigned_at = _spread(rng, n, THORNTON_START, THORNTON_DAYS, hour=8, minutes=6 * 60)
    variant = np.select([raw["any"] == 0, raw["tinc"] < 1], ["no_incentive", "small_incentive"], "large_incentive")
    users = pd.DataFrame(
        {
            "user_id": ids,
            "signup_at": assigned_at - pd.Timedelta(minutes=30),
            "village": raw["villnum"].astype("Int64"),
            "age": raw["age"].astype("Int64"),
            "distance_km": raw["distvct"].round(3),
        }
    )
    experiments = pd.DataFrame(
        {
            "experiment_id": [THORNTON_EXPERIMENT],
            "model_id": [THORNTON_MODEL],
            "control_variant": ["no_incentive"],
            "start_date": [THORNTON_START.date().isoformat()],
            "end_date": [None],
        }
    )
    variants = pd.DataFrame(
        {
            "experiment_id": THORNTON_EXPERIMENT,
            "variant": list(THORNTON_SHARES),
            "expected_share": list(THORNTON_SHARES.values()),
        }
    )
    assignments = pd.DataFrame(
        {"experiment_id": THORNTON_EXPERIMENT, "user_id": ids, "variant": variant, "assigned_at": assigned_at}
    )
    converted = raw["got"].to_numpy() == 1
    visit = pd.DataFrame(
        {
            "session_id": [f"s_{i:04d}_a" for i in range(n)],
            "user_id": ids,
            "started_at": assigned_at + pd.Timedelta(minutes=1),
        }
    )
    later = assigned_at[converted] + pd.to_timedelta(rng.integers(1, 4, int(converted.sum())), unit="D")
    sessions = visit.sort_values("started_at", kind="stable")
    orders = pd.DataFrame(
        {
            "order_id": [f"o_{i:04d}" for i in np.flatnonzero(converted)],
            "user_id": np.asarray(ids)[converted],
            "session_id": None,
            "ordered_at": later.values,
            "revenue": 1.0,
            "status": "completed",
        }
    )
    tables = {
        "users": users,
        "experiments": experiments,
        "experiment_variants": variants,
        "assignments": assignments,
        "sessions": sessions,
        "orders": orders,
    }
    _write(source, tables)
    return tables | {"thornton": raw}


def nsw() -> pd.DataFrame:
    """The NSW job-training experiment (LaLonde 1986; Dehejia & Wahba's 445 men), as causaldata ships it."""
    return pd.read_stata(_packaged("causaldata", "causaldata/nsw_mixtape/nsw_mixtape.dta"))


def write_nsw(source: Path) -> dict[str, pd.DataFrame]:
    """A/B experiment with a revenue metric and a pre-period: training (treatment) vs none; earnings are orders.

    The 445 men are assigned over 20 days (about 22 a day), each with a session at assignment. 1975 earnings
    (before the programme) are a completed order NSW_PRE_DAYS before assignment, the CUPED covariate; 1978
    earnings (after it) are a completed order in a second session four hours after assignment, so every
    outcome is in by the last day. Most earnings are zero (no order) and the rest heavy-tailed.
    """
    raw = nsw()
    rng = np.random.default_rng(19780101)
    n = len(raw)
    ids = np.asarray([f"trainee_{i:03d}" for i in range(n)])
    assigned_at = _spread(rng, n, NSW_START, NSW_DAYS, hour=9, minutes=5 * 60)
    variant = np.where(raw["treat"] == 1, "training", "control")
    users = pd.DataFrame(
        {
            "user_id": ids,
            "signup_at": assigned_at - pd.Timedelta(days=30),
            "race": np.select([raw["black"] == 1, raw["hisp"] == 1], ["black", "hispanic"], "other"),
            "age": raw["age"].astype(int),
            "educ": raw["educ"].astype(int),
        }
    )
    experiments = pd.DataFrame(
        {
            "experiment_id": [NSW_EXPERIMENT],
            "model_id": [NSW_MODEL],
            "control_variant": ["control"],
            "start_date": [NSW_START.date().isoformat()],
            "end_date": [None],
        }
    )
    treated_share = round(float(raw["treat"].mean()), 2)
    variants = pd.DataFrame(
        {
            "experiment_id": NSW_EXPERIMENT,
            "variant": ["control", "training"],
            "expected_share": [round(1 - treated_share, 2), treated_share],
        }
    )
    assignments = pd.DataFrame(
        {"experiment_id": NSW_EXPERIMENT, "user_id": ids, "variant": variant, "assigned_at": assigned_at}
    )
    sessions, orders = [], []
    for tag, earned, at in [
        ("pre", raw["re75"], assigned_at - pd.Timedelta(days=NSW_PRE_DAYS)),
        ("post", raw["re78"], assigned_at + pd.Timedelta(hours=4)),
    ]:
        some = earned.to_numpy() > 0
        session_ids = [f"s_{i:03d}_{tag}" for i in np.flatnonzero(some)]
        sessions.append(pd.DataFrame({"session_id": session_ids, "user_id": ids[some], "started_at": at[some].values}))
        orders.append(
            pd.DataFrame(
                {
                    "order_id": [f"o_{i:03d}_{tag}" for i in np.flatnonzero(some)],
                    "user_id": ids[some],
                    "session_id": session_ids,
                    "ordered_at": (at[some] + pd.Timedelta(minutes=5)).values,
                    "revenue": earned[some].astype(float).round(2).values,
                    "status": "completed",
                }
            )
        )
    visit = pd.DataFrame(
        {"session_id": [f"s_{i:03d}_a" for i in range(n)], "user_id": ids, "started_at": assigned_at.values}
    )
    tables = {
        "users": users,
        "experiments": experiments,
        "experiment_variants": variants,
        "assignments": assignments,
        "sessions": pd.concat([visit, *sessions], ignore_index=True).sort_values("started_at", kind="stable"),
        "orders": pd.concat(orders, ignore_index=True).sort_values("ordered_at", kind="stable"),
    }
    _write(source, tables)
    return tables | {"nsw": raw}


def fair() -> pd.DataFrame:
    """Fair (1978): 6,366 women surveyed on marriage and extramarital affairs, as statsmodels ships it."""
    return pd.read_csv(_packaged("statsmodels", "statsmodels/datasets/fair/fair.csv"))


def write_fair(source: Path) -> dict[str, pd.DataFrame]:
    """Two monitored risk models on one population, labels one to seven months late, a tenth never labelled.

    Each respondent is scored on one of 45 days by both models (flagged = score >= 0.5, the default, as no
    threshold is logged); the label (any affair) arrives 30-199 days later, its time written in local time
    with a +02:00 offset. Predictions are one Parquet file a day with a categorical feature (occupation).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    raw = fair()
    rng = np.random.default_rng(20250301)
    n = len(raw)
    outcome = (raw["affairs"] > 0).astype(int)
    day = rng.integers(0, FAIR_DAYS, n)
    scored_at = pd.Series([FAIR_START + timedelta(days=int(d)) for d in day]) + pd.to_timedelta(
        rng.integers(8 * 60, 20 * 60, n), unit="min"
    )
    ids = [f"respondent_{i:05d}" for i in range(n)]
    users = pd.DataFrame(
        {
            "user_id": ids,
            "signup_at": scored_at - pd.Timedelta(days=400),
            "age_band": pd.cut(raw["age"], [0, 25, 35, 100], right=False, labels=["<25", "25-34", "35+"]).astype(str),
            "religious": raw["religious"].astype(int),
        }
    )
    estimators = {
        FAIR_MODELS[0]: LogisticRegression(max_iter=2000),
        FAIR_MODELS[1]: DecisionTreeClassifier(max_depth=4, random_state=0),
    }
    predictions = pd.concat(
        [
            pd.DataFrame(
                {
                    "prediction_id": [f"{model}_{i:05d}" for i in range(n)],
                    "model_id": model,
                    "model_version": "2025.1",
                    "user_id": ids,
                    "predicted_at": scored_at,
                    "score": estimator.fit(raw[FAIR_FEATURES], outcome).predict_proba(raw[FAIR_FEATURES])[:, 1],
                    "feature_age": raw["age"].astype(float),
                    "feature_occupation": "occupation_" + raw["occupation"].astype(int).astype(str),
                }
            )
            for model, estimator in estimators.items()
        ],
        ignore_index=True,
    )
    labelled_at = predictions["predicted_at"] + pd.to_timedelta(rng.integers(30, 200, len(predictions)), unit="D")
    labels = pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"],
            "label": np.tile(outcome.to_numpy(), len(FAIR_MODELS)),
            # local time two hours ahead of UTC, as written by the system that records the outcome
            "labeled_at": (labelled_at + pd.Timedelta(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
            "label_source": "implicit",
        }
    ).sample(frac=0.9, random_state=1)
    _write(source, {"users": users, "labels": labels})
    (source / "predictions").mkdir(parents=True, exist_ok=True)
    for day, rows in predictions.groupby(predictions["predicted_at"].dt.date):
        rows.to_parquet(source / "predictions" / f"predictions_{day}.parquet", index=False)
    return {"users": users, "predictions": predictions, "labels": labels.assign(labelled_at_utc=labelled_at)}
