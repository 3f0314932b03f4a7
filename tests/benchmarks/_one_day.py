"""One day of one model's predictions from the synthetic world's generator, for the benchmarks."""

import numpy as np

from orchestration.lib import synthetic_world as sw

DAY_INDEX = 20  # a day after the first model's launch


def one_day_generator(rows: int):
    """(cfg, rng, users, predict): ``predict()`` draws DAY_INDEX's ``rows`` predictions of the first model."""
    cfg = sw.WorldConfig(days=30, users=200_000, predictions_per_day=rows)
    rng = np.random.default_rng(0)
    t0 = np.datetime64(cfg.start_date.isoformat(), "s")
    users = sw._make_users(cfg, rng, t0)
    # everyone assigned to treatment before the day, so every prediction is eligible
    assignment = {
        m.model_id: {"assigned_at": np.full(cfg.users, t0), "treated": np.ones(cfg.users, bool)} for m in cfg.models
    }
    biased = users[cfg.biased_attribute].to_numpy() == cfg.biased_group

    def predict():
        return sw._predictions_for_day(cfg, rng, cfg.models[0], DAY_INDEX, t0, users, assignment, biased)

    return cfg, rng, users, predict
