"""Turn per-arm sufficient statistics into one result row per treatment arm.

Input rows come from marts.experiment_stats (one per experiment, variant,
metric, window, as-of date); output rows compare each treatment variant with
the experiment's control variant. Pure pandas over a few rows per day.
"""

from __future__ import annotations

import pandas as pd

from orchestration.lib.stats import ArmStats, compare_means

GRAIN = ["experiment_id", "metric", "analysis_window", "as_of_date"]
RESULT_COLUMNS = [
    "experiment_id", "model_id", "metric", "control_variant", "treatment_variant", "analysis_window", "as_of_date",
    "n_control", "n_treatment", "mean_control", "mean_treatment", "absolute_lift", "absolute_se",
    "absolute_ci_low", "absolute_ci_high", "relative_lift", "relative_se", "relative_ci_low", "relative_ci_high",
    "degrees_of_freedom", "p_value",
]


def experiment_results(stats: pd.DataFrame, experiments: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """``stats``: experiment_stats rows; ``experiments``: experiment_id, model_id, control_variant."""
    rows = []
    merged = stats.merge(experiments[["experiment_id", "model_id", "control_variant"]], on="experiment_id")
    for key, group in merged.groupby(GRAIN, sort=True):
        control = group[group["variant"] == group["control_variant"]]
        if control.empty:
            continue  # no control units yet: nothing to compare against
        c = control.iloc[0]
        control_arm = ArmStats(int(c["n"]), float(c["value_sum"]), float(c["value_sum_sq"]))
        for _, t in group[group["variant"] != group["control_variant"]].iterrows():
            result = compare_means(control_arm, ArmStats(int(t["n"]), float(t["value_sum"]), float(t["value_sum_sq"])), alpha)
            rows.append(
                dict(zip(GRAIN, key))
                | {"model_id": c["model_id"], "control_variant": c["control_variant"], "treatment_variant": t["variant"]}
                | result.as_dict()
            )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
