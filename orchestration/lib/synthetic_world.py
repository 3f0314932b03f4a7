"""A synthetic but realistic business + ML world that writes every raw contract table.

The world plants effects that the pipeline must recover, and states them in
``truth.json``:

* two models, each behind a perpetual holdout experiment (10% never see it);
  the treatment multiplies each session's order probability and each order's
  value, so conversion and revenue per user rise by a planted amount;
* late labels (implicit after days, a ~2% human-review sample within a day);
* a planted incident (feature drift + calibration decay) on one model;
* a planted biased group (the model under-scores it, so its TPR is lower);
* a handful of contract-breaking rows so quarantine has work to do.

Treatment effects are simulated as potential outcomes with common random
numbers, so ``truth.json`` carries the exact sample average treatment effect of
every experiment metric for every as-of date, not just the parameters.

Pure numpy/pandas/pyarrow: no Dagster, no DuckDB.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DAY = np.timedelta64(1, "D")
SECONDS_PER_DAY = 86_400
PRE_PERIOD_DAYS = 14

COUNTRIES = (["US", "GB", "DE", "FR", "BR", "IN"], [0.35, 0.15, 0.15, 0.1, 0.1, 0.15])
SEGMENTS = (["consumer", "smb", "enterprise"], [0.7, 0.22, 0.08])
GENDERS = (["female", "male", "nonbinary", "unknown"], [0.47, 0.47, 0.02, 0.04])
AGE_BANDS = (["18-24", "25-34", "35-44", "45-54", "55+", "unknown"], [0.15, 0.27, 0.22, 0.16, 0.15, 0.05])
DEVICES = np.array(["ios", "android", "web"])
ORDER_STATUSES = np.array(["completed", "cancelled", "refunded"])


@dataclass(frozen=True)
class PlantedModel:
    """One model and its perpetual holdout experiment."""

    model_id: str
    start_day: int  # day index of experiment start (and model launch)
    conversion_multiplier: float  # on each treated session's order probability
    order_value_multiplier: float  # on each treated order's revenue
    threshold: float
    intercept: float  # score logit intercept: sets the positive rate
    serving_cost_per_1k: float
    daily_fixed_cost: float
    review_cost_per_label: float

    @property
    def experiment_id(self) -> str:
        return f"exp_{self.model_id}_holdout"


DEFAULT_MODELS = (
    PlantedModel("recommender", 15, 1.15, 1.05, 0.5, -0.6, 40.0, 60.0, 1.5),
    PlantedModel("churn_offer", 17, 1.10, 1.00, 0.35, -1.0, 30.0, 40.0, 1.5),
)


@dataclass(frozen=True)
class WorldConfig:
    days: int = 60
    users: int = 20_000
    seed: int = 7
    predictions_per_day: int = 2_000  # per model and day
    start_date: date = date(2026, 9, 1)
    holdout_share: float = 0.10
    human_review_share: float = 0.02
    implicit_label_share: float = 0.85
    incident_model: str = "recommender"
    incident_day: int | None = None  # default: three quarters into the world
    # The business feels the incident later than the model-health metrics do:
    # from this many days after its start, the broken model's exposed sessions
    # convert at `incident_conversion_multiplier` instead of its planted lift.
    incident_kpi_lag_days: int = 3
    incident_conversion_multiplier: float = 0.85
    biased_attribute: str = "age_band"
    biased_group: str = "55+"
    bias_logit_shift: float = 2.2  # positives of the group get scored this much lower
    dirty_rows: bool = True
    # A logging bug that drops this share of holdout assignment rows: plants a
    # sample-ratio mismatch (0 = none).
    lost_holdout_assignments: float = 0.0
    models: tuple[PlantedModel, ...] = field(default=DEFAULT_MODELS)

    def __post_init__(self) -> None:
        last_start = max(m.start_day for m in self.models)
        if self.days < last_start + 7:
            raise ValueError(
                f"days={self.days} is too short: experiments start on day {last_start} "
                f"(after a {PRE_PERIOD_DAYS}-day pre-period) and need a week to run; use --days >= {last_start + 7}"
            )
        if self.users < 100:
            raise ValueError(f"users={self.users} is too small; use --users >= 100")
        if self.predictions_per_day < 1:
            raise ValueError("predictions_per_day must be >= 1")

    @property
    def resolved_incident_day(self) -> int | None:
        model = next(m for m in self.models if m.model_id == self.incident_model)
        day = self.incident_day if self.incident_day is not None else max(model.start_day + 8, round(self.days * 0.75))
        return day if day < self.days else None

    @property
    def incident_kpi_day(self) -> int | None:
        """First day on which the incident lowers conversion (None if that is past the world's end)."""
        start = self.resolved_incident_day
        day = None if start is None else start + self.incident_kpi_lag_days
        return day if day is not None and day < self.days else None

    def day_date(self, day: int) -> date:
        return self.start_date + timedelta(days=day)


# --------------------------------------------------------------------------- users


def _choice(rng: np.random.Generator, spec: tuple[list[str], list[float]], n: int) -> np.ndarray:
    values, probs = spec
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=probs)]


def _make_users(cfg: WorldConfig, rng: np.random.Generator, t0: np.datetime64) -> pd.DataFrame:
    n = cfg.users
    # 80% signed up in the year before the world starts, 20% during it.
    joined_during = rng.random(n) < 0.2
    offset_days = np.where(joined_during, rng.random(n) * cfg.days, -rng.random(n) * 365)
    signup_at = t0 + (offset_days * SECONDS_PER_DAY).astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "user_id": np.char.add("u", np.char.zfill(np.arange(n).astype(str), 7)).astype(object),
            "signup_at": signup_at.astype("datetime64[us]"),
            "country": _choice(rng, COUNTRIES, n),
            "segment": _choice(rng, SEGMENTS, n),
            "gender": _choice(rng, GENDERS, n),
            "age_band": _choice(rng, AGE_BANDS, n),
        }
    )


# ------------------------------------------------------------------ sessions, orders


@dataclass
class _Sessions:
    user: np.ndarray  # user index
    started_at: np.ndarray  # datetime64[s]
    day: np.ndarray  # day index


def _make_sessions(cfg: WorldConfig, rng: np.random.Generator, t0, signup_at, rate) -> _Sessions:
    signup_day = np.floor((signup_at - t0) / DAY).astype(int)
    counts = rng.poisson(rate[:, None], size=(cfg.users, cfg.days))
    counts[np.arange(cfg.days)[None, :] < signup_day[:, None]] = 0
    user, day = np.nonzero(counts)
    reps = counts[user, day]
    user, day = np.repeat(user, reps), np.repeat(day, reps)
    seconds = rng.integers(0, SECONDS_PER_DAY, size=user.size)
    started_at = t0 + day.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    # A user who signed up today cannot visit before signing up.
    started_at = np.maximum(started_at, signup_at[user].astype("datetime64[s]"))
    order = np.lexsort((started_at, user))
    return _Sessions(user[order], started_at[order], day[order])


def _assign(cfg, rng, sessions: _Sessions, t0) -> dict[str, dict[str, np.ndarray]]:
    """Assign each user to each experiment at their first session on/after its start."""
    out = {}
    for model in cfg.models:
        start = t0 + np.timedelta64(model.start_day, "D")
        eligible = np.nonzero(sessions.started_at >= start)[0]
        users, first = np.unique(sessions.user[eligible], return_index=True)
        assigned_at = np.full(cfg.users, np.datetime64("NaT"), dtype="datetime64[s]")
        assigned_at[users] = sessions.started_at[eligible[first]]
        treated = rng.random(cfg.users) >= cfg.holdout_share
        out[model.model_id] = {"assigned_at": assigned_at, "treated": treated}
    return out


def _order_outcomes(cfg, sessions, assignment, propensity, value_scale, u_order, value_noise, overrides=None):
    """Order indicator and revenue per session; ``overrides`` forces one model's exposure."""
    prob = propensity[sessions.user].copy()
    value = value_scale[sessions.user] * value_noise
    for model in cfg.models:
        a = assignment[model.model_id]
        after = sessions.started_at >= a["assigned_at"][sessions.user]  # NaT compares False
        if overrides is not None and model.model_id in overrides:
            exposed = after if overrides[model.model_id] else np.zeros_like(after)
        else:
            exposed = after & a["treated"][sessions.user]
        multiplier = np.full(sessions.user.size, model.conversion_multiplier)
        if model.model_id == cfg.incident_model and cfg.incident_kpi_day is not None:
            multiplier[sessions.day >= cfg.incident_kpi_day] = cfg.incident_conversion_multiplier
        prob = np.where(exposed, prob * multiplier, prob)
        value = np.where(exposed, value * model.order_value_multiplier, value)
    ordered = u_order < np.minimum(prob, 1.0)
    return ordered, np.round(value, 2)


def _experiment_truth(
    cfg, sessions, assignment, propensity, value_scale, u_order, value_noise, ordered_at, completed, t0
):
    """Sample average treatment effect of each experiment metric for every as-of date."""
    order_day = np.floor((ordered_at - t0) / DAY).astype(int)
    truth = {}
    for model in cfg.models:
        a = assignment[model.model_id]
        assigned_at = a["assigned_at"]
        units = np.nonzero(~np.isnat(assigned_at))[0]
        unit_pos = np.full(cfg.users, -1)
        unit_pos[units] = np.arange(units.size)
        assigned_day = np.floor((assigned_at[units] - t0) / DAY).astype(int)
        counted = (unit_pos[sessions.user] >= 0) & (ordered_at >= assigned_at[sessions.user]) & completed
        counted &= order_day < cfg.days
        per_arm = {}
        for arm, exposed in (("treatment", True), ("control", False)):
            ordered, revenue = _order_outcomes(
                cfg, sessions, assignment, propensity, value_scale, u_order, value_noise, {model.model_id: exposed}
            )
            hit = counted & ordered
            orders = np.zeros((units.size, cfg.days))
            rev = np.zeros((units.size, cfg.days))
            np.add.at(orders, (unit_pos[sessions.user[hit]], order_day[hit]), 1)
            np.add.at(rev, (unit_pos[sessions.user[hit]], order_day[hit]), revenue[hit])
            per_arm[arm] = {"conversion": np.cumsum(orders, axis=1) > 0, "revenue_per_user": np.cumsum(rev, axis=1)}
        daily = {}
        for day in range(model.start_day, cfg.days):
            in_sample = assigned_day <= day
            if not in_sample.any():
                continue
            metrics = {"treated_units": int((in_sample & a["treated"][units]).sum())}
            for metric in ("conversion", "revenue_per_user"):
                t_mean = float(per_arm["treatment"][metric][in_sample, day].mean())
                c_mean = float(per_arm["control"][metric][in_sample, day].mean())
                metrics[metric] = {
                    "units": int(in_sample.sum()),
                    "treatment_mean": t_mean,
                    "control_mean": c_mean,
                    "absolute_lift": t_mean - c_mean,
                    "relative_lift": t_mean / c_mean - 1 if c_mean else None,
                }
            daily[cfg.day_date(day).isoformat()] = metrics
        truth[model.experiment_id] = {
            "model_id": model.model_id,
            "start_date": cfg.day_date(model.start_day).isoformat(),
            "holdout_share": cfg.holdout_share,
            "session_conversion_multiplier": model.conversion_multiplier,
            "order_value_multiplier": model.order_value_multiplier,
            "expected_revenue_per_user_relative_lift": model.conversion_multiplier * model.order_value_multiplier - 1,
            "sample_average_treatment_effect": daily,
        }
    return truth


# ----------------------------------------------------------------------- predictions


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _predictions_for_day(cfg, rng, model: PlantedModel, day: int, t0, users: pd.DataFrame, assignment, biased):
    """One model's predictions for one day, vectorised (1M rows take about a second)."""
    a = assignment[model.model_id]
    day_start = t0 + np.timedelta64(day, "D")
    day_end = day_start + np.timedelta64(1, "D")
    eligible = np.nonzero(a["treated"] & (a["assigned_at"] < day_end))[0]  # NaT compares False
    if eligible.size == 0:
        return None
    n = cfg.predictions_per_day
    user = eligible[rng.integers(0, eligible.size, size=n)]
    earliest = np.maximum(a["assigned_at"][user], day_start)
    span = (day_end - earliest).astype(float)
    predicted_at = earliest + (rng.random(n) * span).astype("timedelta64[s]")

    incident = (
        cfg.resolved_incident_day is not None
        and model.model_id == cfg.incident_model
        and day >= cfg.resolved_incident_day
    )
    recency = rng.normal(1.0 if incident else 0.0, 1.0, n)
    basket = rng.lognormal(3.0, 0.6, n)
    basket_missing = rng.random(n) < 0.01
    device_p = [0.2, 0.2, 0.6] if incident else [0.4, 0.4, 0.2]
    device = DEVICES[rng.choice(3, size=n, p=device_p)]
    tenure = rng.gamma(2.0, 200.0, n)
    device_effect = np.select([device == "ios", device == "android"], [0.3, 0.0], -0.3)
    logit = model.intercept + 0.9 * recency + 0.5 * (np.log(basket) - 3.0) + device_effect - 0.0005 * (tenure - 400)
    score = _sigmoid(logit)
    # The truth behind the label: calibrated, except for the planted defects.
    true_logit = logit.copy()
    if incident:
        true_logit -= 1.2  # calibration decay: the model now over-predicts
    true_logit = np.where(biased[user], true_logit + cfg.bias_logit_shift, true_logit)
    p_true = _sigmoid(true_logit)
    label = (rng.random(n) < p_true).astype(np.int64)

    stamp = cfg.day_date(day).strftime("%Y%m%d")
    ids = np.char.add(f"{model.model_id}-{stamp}-", np.char.zfill(np.arange(n).astype(str), 7)).astype(object)
    frame = pd.DataFrame(
        {
            "prediction_id": ids,
            "model_id": model.model_id,
            "model_version": "v1",
            "user_id": users["user_id"].to_numpy()[user],
            "predicted_at": predicted_at.astype("datetime64[us]"),
            "score": score,
            "threshold": model.threshold,
            "feature_recency": recency,
            "feature_basket_value": np.where(basket_missing, np.nan, basket),
            "feature_tenure_days": tenure,
            "feature_device": device.astype(object),
        }
    )
    return frame, label, p_true, user


def _labels_for(cfg, rng, preds: pd.DataFrame, label: np.ndarray) -> pd.DataFrame:
    n = len(preds)
    predicted_at = preds["predicted_at"].to_numpy()
    parts = []
    # Implicit labels: most predictions, after 1-8 days; they miss some positives.
    implicit = rng.random(n) < cfg.implicit_label_share
    delay = (1 + rng.poisson(2.0, n)) * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, n)
    observed = np.where(label == 1, rng.random(n) < 0.92, rng.random(n) < 0.01).astype(np.int64)
    parts.append(("implicit", implicit, delay, observed))
    # A later implicit correction for ~1% of implicit labels: the latest one wins.
    corrected = implicit & (rng.random(n) < 0.01)
    parts.append(("implicit", corrected, delay + rng.integers(1, 3, n) * SECONDS_PER_DAY, label))
    # Human review: ~2% within a day, always right; overrides the implicit label.
    reviewed = rng.random(n) < cfg.human_review_share
    parts.append(("human_review", reviewed, rng.integers(3600, 20 * 3600, n), label))
    frames = []
    for source, mask, delay_s, value in parts:
        frames.append(
            pd.DataFrame(
                {
                    "prediction_id": preds["prediction_id"].to_numpy()[mask],
                    "label": value[mask],
                    "labeled_at": (predicted_at[mask] + delay_s[mask].astype("timedelta64[s]")).astype(
                        "datetime64[us]"
                    ),
                    "label_source": source,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _feedback_for(rng, preds: pd.DataFrame, label: np.ndarray, day: int, model_id: str) -> pd.DataFrame:
    n = len(preds)
    gives = rng.random(n) < 0.03
    up = rng.random(n) < 0.3 + 0.5 * label
    created = preds["predicted_at"].to_numpy() + rng.integers(60, 6 * 3600, n).astype("timedelta64[s]")
    idx = np.nonzero(gives)[0]
    return pd.DataFrame(
        {
            "feedback_id": np.char.add(f"fb-{model_id}-{day:04d}-", idx.astype(str)).astype(object),
            "prediction_id": preds["prediction_id"].to_numpy()[idx],
            "user_id": preds["user_id"].to_numpy()[idx],
            "created_at": created[idx].astype("datetime64[us]"),
            "value": np.where(up[idx], "up", "down").astype(object),
        }
    )


# ---------------------------------------------------------------------------- writer


class _Writer:
    """Writes one Parquet file per table and day; splits rows by their time column."""

    def __init__(self, out: Path, cfg: WorldConfig):
        self.out, self.cfg = out, cfg
        self.rows: dict[str, int] = {}

    def snapshot(self, table: str, frame: pd.DataFrame) -> None:
        self._write(self.out / table / f"{table}.parquet", frame, table)

    def day(self, table: str, day: int, frame: pd.DataFrame) -> None:
        self._write(self.out / table / f"{table}_{self.cfg.day_date(day).isoformat()}.parquet", frame, table)

    def _write(self, path: Path, frame: pd.DataFrame | pa.Table, table: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(frame, pd.DataFrame):
            frame = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(frame, path)
        self.rows[table] = self.rows.get(table, 0) + len(frame)


def _split_by_day(frame: pd.DataFrame, column: str, t0) -> dict[int, pd.DataFrame]:
    day = np.floor((frame[column].to_numpy() - t0) / DAY).astype(int)
    return {int(d): frame[day == d] for d in np.unique(day)}


# ------------------------------------------------------------------------ the world


def generate_world(out: str | Path, cfg: WorldConfig, progress=print) -> dict:
    """Write every contract table under ``out`` and return the truth (also ``out/truth.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    t0 = np.datetime64(cfg.start_date.isoformat(), "s")
    t_end = t0 + np.timedelta64(cfg.days, "D")
    writer = _Writer(out, cfg)

    users = _make_users(cfg, rng, t0)
    signup_at = users["signup_at"].to_numpy().astype("datetime64[s]")
    # Latent user traits: heterogeneity makes the pre-period predictive (CUPED).
    rate = rng.gamma(1.0, 0.25, cfg.users)
    propensity = rng.beta(1.0, 15.0, cfg.users)
    value_scale = rng.lognormal(3.3, 0.7, cfg.users)
    biased = users[cfg.biased_attribute].to_numpy() == cfg.biased_group
    writer.snapshot("users", users)

    experiments = pa.table(
        {
            "experiment_id": [m.experiment_id for m in cfg.models],
            "model_id": [m.model_id for m in cfg.models],
            "control_variant": ["holdout"] * len(cfg.models),
            "start_date": pa.array([cfg.day_date(m.start_day) for m in cfg.models], pa.date32()),
            "end_date": pa.nulls(len(cfg.models), pa.date32()),  # perpetual holdouts never end
        }
    )
    writer.snapshot("experiments", experiments)
    variants = pd.DataFrame(
        {
            "experiment_id": np.repeat([m.experiment_id for m in cfg.models], 2),
            "variant": ["holdout", "treatment"] * len(cfg.models),
            "expected_share": [cfg.holdout_share, 1 - cfg.holdout_share] * len(cfg.models),
        }
    )
    writer.snapshot("experiment_variants", variants)

    sessions = _make_sessions(cfg, rng, t0, signup_at, rate)
    assignment = _assign(cfg, rng, sessions, t0)
    n_sessions = sessions.user.size
    u_order = rng.random(n_sessions)
    value_noise = rng.lognormal(0.0, 0.3, n_sessions)
    ordered_at = sessions.started_at + rng.integers(60, 1800, n_sessions).astype("timedelta64[s]")
    status = ORDER_STATUSES[rng.choice(3, size=n_sessions, p=[0.9, 0.05, 0.05])]
    ordered, revenue = _order_outcomes(cfg, sessions, assignment, propensity, value_scale, u_order, value_noise)
    ordered &= ordered_at < t_end  # orders after the world ends have not happened yet
    truth_experiments = _experiment_truth(
        cfg, sessions, assignment, propensity, value_scale, u_order, value_noise, ordered_at, status == "completed", t0
    )

    session_ids = np.char.add("s", np.char.zfill(np.arange(n_sessions).astype(str), 9)).astype(object)
    user_ids = users["user_id"].to_numpy()
    sessions_df = pd.DataFrame(
        {
            "session_id": session_ids,
            "user_id": user_ids[sessions.user],
            "started_at": sessions.started_at.astype("datetime64[us]"),
        }
    )
    idx = np.nonzero(ordered)[0]
    orders_df = pd.DataFrame(
        {
            "order_id": np.char.add("o", np.char.zfill(idx.astype(str), 9)).astype(object),
            "user_id": user_ids[sessions.user[idx]],
            "session_id": session_ids[idx],
            "ordered_at": ordered_at[idx].astype("datetime64[us]"),
            "revenue": revenue[idx],
            "status": status[idx].astype(object),
        }
    )
    assignment_frames = []
    for model in cfg.models:
        a = assignment[model.model_id]
        units = np.nonzero(~np.isnat(a["assigned_at"]))[0]
        if cfg.lost_holdout_assignments:
            lost = ~a["treated"][units] & (rng.random(units.size) < cfg.lost_holdout_assignments)
            units = units[~lost]
        assignment_frames.append(
            pd.DataFrame(
                {
                    "experiment_id": model.experiment_id,
                    "user_id": user_ids[units],
                    "variant": np.where(a["treated"][units], "treatment", "holdout").astype(object),
                    "assigned_at": a["assigned_at"][units].astype("datetime64[us]"),
                }
            )
        )
    assignments_df = pd.concat(assignment_frames, ignore_index=True)

    dirty = {"predictions": {}, "orders": {}}
    by_day = {
        "sessions": _split_by_day(sessions_df, "started_at", t0),
        "orders": _split_by_day(orders_df, "ordered_at", t0),
        "assignments": _split_by_day(assignments_df, "assigned_at", t0),
    }

    # Labels and feedback land on later days than their predictions: buffer them by day.
    pending: dict[str, dict[int, list[pd.DataFrame]]] = {"labels": {}, "feedback": {}}
    daily_cost: dict[str, dict[int, float]] = {m.model_id: {} for m in cfg.models}
    tpr_num: dict[str, dict[str, float]] = {m.model_id: {} for m in cfg.models}
    tpr_den: dict[str, dict[str, float]] = {m.model_id: {} for m in cfg.models}
    group_of_user = users[cfg.biased_attribute].to_numpy()
    for day in range(cfg.days):
        for table in ("sessions", "orders", "assignments"):
            frame = by_day[table].get(day)
            if frame is None:
                frame = (
                    sessions_df if table == "sessions" else orders_df if table == "orders" else assignments_df
                ).iloc[:0]
            if table == "orders" and cfg.dirty_rows and day % 7 == 3 and len(frame):
                # a duplicated order, sent again a second later with another revenue (a conflict; an exact copy is
                # none: see predictions); the earlier one wins in whichever order a database returns them
                first = frame.loc[[frame["ordered_at"].idxmin()]]  # a second later is still its day
                again = first.assign(
                    revenue=first["revenue"] + 1.0, ordered_at=first["ordered_at"] + pd.Timedelta(1, "s")
                )
                frame = pd.concat([frame, again], ignore_index=True)
                dirty["orders"]["duplicate_key"] = dirty["orders"].get("duplicate_key", 0) + 1
            writer.day(table, day, frame)

        pred_frames, label_frames, feedback_frames, costs = [], [], [], []
        for model in cfg.models:
            made = _predictions_for_day(cfg, rng, model, day, t0, users, assignment, biased)
            if made is None:
                continue
            preds, label, p_true, user_idx = made
            pred_frames.append(preds)
            labels = _labels_for(cfg, rng, preds, label)
            label_frames.append(labels)
            feedback_frames.append(_feedback_for(rng, preds, label, day, model.model_id))
            # Expected TPR by group (from label probabilities, not draws): the bias truth.
            positive = preds["score"].to_numpy() >= model.threshold
            groups = group_of_user[user_idx]
            for g in np.unique(groups):
                m = groups == g
                tpr_num[model.model_id][g] = tpr_num[model.model_id].get(g, 0.0) + float(
                    (p_true[m] * positive[m]).sum()
                )
                tpr_den[model.model_id][g] = tpr_den[model.model_id].get(g, 0.0) + float(p_true[m].sum())
            reviews = int((labels["label_source"] == "human_review").sum())
            costs.append(
                {
                    "date": cfg.day_date(day),
                    "model_id": model.model_id,
                    "serving_cost": round(model.daily_fixed_cost + model.serving_cost_per_1k * len(preds) / 1000, 2),
                    "review_cost": round(model.review_cost_per_label * reviews, 2),
                }
            )
            daily_cost[model.model_id][day] = costs[-1]["serving_cost"] + costs[-1]["review_cost"]
        predictions = pd.concat(pred_frames, ignore_index=True) if pred_frames else None
        if predictions is not None and cfg.dirty_rows and day % 5 == 4:
            # the day's first prediction (a second later is still its day), then two more rows
            first = predictions.loc[[predictions["predicted_at"].idxmin()]]
            bad = pd.concat([first, predictions.iloc[1:3]], ignore_index=True)
            # its key again, scored anew a second later: a conflict (the earlier row wins)
            bad.loc[0, "score"] = bad.loc[0, "score"] / 2
            bad.loc[0, "predicted_at"] = bad.loc[0, "predicted_at"] + pd.Timedelta(1, "s")
            bad.loc[1, "prediction_id"] = bad.loc[1, "prediction_id"] + "-bad"
            bad.loc[1, "score"] = 1.5  # out of range; row 2 stays an exact copy (a row sent twice)
            predictions = pd.concat([predictions, bad], ignore_index=True)
            for kind in ("duplicate_key", "score_out_of_range", "exact_copy"):
                dirty["predictions"][kind] = dirty["predictions"].get(kind, 0) + 1
        if predictions is not None:
            writer.day("predictions", day, predictions)
            writer.day("model_costs", day, pd.DataFrame(costs))
            for table, frames, column in (
                ("labels", label_frames, "labeled_at"),
                ("feedback", feedback_frames, "created_at"),
            ):
                for later, part in _split_by_day(pd.concat(frames, ignore_index=True), column, t0).items():
                    if later < cfg.days:  # what happens after the world ends has not arrived yet
                        pending[table].setdefault(later, []).append(part)
        for table, buffered in pending.items():
            if day in buffered:
                writer.day(table, day, pd.concat(buffered.pop(day), ignore_index=True))
        if progress and (day % 10 == 9 or day == cfg.days - 1):
            progress(f"  generated day {day + 1}/{cfg.days} ({cfg.day_date(day)})")

    _add_net_value_truth(cfg, truth_experiments, daily_cost)
    incident_day = cfg.resolved_incident_day
    truth = {
        "config": {**{k: v for k, v in asdict(cfg).items() if k != "models"}, "start_date": cfg.start_date.isoformat()},
        "start_date": cfg.start_date.isoformat(),
        "end_date": cfg.day_date(cfg.days - 1).isoformat(),
        "pre_period_days": PRE_PERIOD_DAYS,
        "models": [asdict(m) | {"experiment_id": m.experiment_id} for m in cfg.models],
        "experiments": truth_experiments,
        "incident": None
        if incident_day is None
        else {
            "model_id": cfg.incident_model,
            "start_date": cfg.day_date(incident_day).isoformat(),
            "drifted_features": ["feature_recency", "feature_device"],
            "feature_recency_mean_shift": 1.0,
            "feature_device_mix": {
                "before": dict(zip(DEVICES.tolist(), [0.4, 0.4, 0.2])),
                "after": dict(zip(DEVICES.tolist(), [0.2, 0.2, 0.6])),
            },
            "calibration_logit_shift": -1.2,
            # the lagging KPI drop that follows (None when past the world's end)
            "kpi_drop": None
            if cfg.incident_kpi_day is None
            else {
                "start_date": cfg.day_date(cfg.incident_kpi_day).isoformat(),
                "lag_days": cfg.incident_kpi_lag_days,
                "kpi": "conversion_rate",
                "exposed_session_conversion_multiplier": {
                    "before": next(m.conversion_multiplier for m in cfg.models if m.model_id == cfg.incident_model),
                    "after": cfg.incident_conversion_multiplier,
                },
            },
        },
        "bias": {
            "attribute": cfg.biased_attribute,
            "group": cfg.biased_group,
            "logit_shift": cfg.bias_logit_shift,
            "expected_tpr": {
                model_id: {g: tpr_num[model_id][g] / tpr_den[model_id][g] for g in sorted(tpr_den[model_id])}
                for model_id in tpr_den
            },
        },
        "dirty_rows": dirty,
        "lost_holdout_assignments": cfg.lost_holdout_assignments,
        "rows_written": writer.rows,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2, default=str))
    return truth


def _add_net_value_truth(cfg: WorldConfig, truth_experiments: dict, daily_cost: dict) -> None:
    """Planted net value per as-of date: true revenue-per-user lift x treated units - model cost since start."""
    for model in cfg.models:
        daily = truth_experiments[model.experiment_id]["sample_average_treatment_effect"]
        for day in range(model.start_day, cfg.days):
            key = cfg.day_date(day).isoformat()
            if key not in daily:
                continue
            cost = sum(c for d, c in daily_cost[model.model_id].items() if model.start_day <= d <= day)
            value = daily[key]["revenue_per_user"]["absolute_lift"] * daily[key]["treated_units"]
            daily[key]["model_cost"] = round(cost, 2)
            daily[key]["incremental_value"] = value
            daily[key]["net_value"] = value - cost


def load_truth(source: str | Path) -> dict:
    return json.loads((Path(source) / "truth.json").read_text())
