"""Fixtures: each data set is laid out, `init`-ed, reviewed as the README says and materialised once per session."""

import shutil

import pytest

from tests.acceptance.datasets import write_fair, write_nsw, write_rossi, write_thornton
from tests.acceptance.runner import Run, edit, init, materialize


def initialised(tmp_path_factory, name: str, write) -> Run:
    """The data set laid out in a fresh folder and `init`-ed there; ``init_config``: the file as init wrote it,
    before the review edits."""
    home = tmp_path_factory.mktemp(name)
    run = init(home, home / "landing", write(home / "landing"))
    run.init_config = run.config
    return run


@pytest.fixture(scope="session")
def rossi_run(tmp_path_factory):
    run = initialised(tmp_path_factory, "rossi", write_rossi)
    tables = run.tables
    # README, step 3: a risk score's positive decision (flagged high risk) is the harm
    edit(run, r"^(\s+)positive_decision: favourable$", r"\1positive_decision: harmful")
    # README, step 3 for one cohort judged once its outcomes are in: a fairness window covering every
    # prediction day up to the last label, groups of a few dozen judged, and a stricter nine-tenths rule
    # on the favourable-outcome rates, so that the verdict must name a group and the direction decides which
    first = tables["predictions"]["predicted_at"].min().date()
    last = tables["labels"]["labeled_at"].max().date()
    edit(run, r"^  window_days: \d+.*$", f"  window_days: {(last - first).days + 1}")
    edit(run, r"^  min_labelled: \d+.*$", "  min_labelled: 30")
    edit(run, r"^  disparate_impact_min: [\d.]+.*$", "  disparate_impact_min: 0.9")
    return materialize(run)


@pytest.fixture(scope="session")
def thornton_run(tmp_path_factory):
    run = initialised(tmp_path_factory, "thornton", write_thornton)
    # README, step 3, as init's REVIEW lines advise: the visits end with the enrolment while results are still
    # learnt for three days (activity that ended, not an outage), so the sessions' and orders' bands are widened
    edit(run, r"^    z: 4\.0$", "    z: 4.0\n    tables: {sessions: {z: 30}, orders: {z: 30}}")
    return materialize(run)


@pytest.fixture(scope="session")
def nsw_run(tmp_path_factory):
    return materialize(initialised(tmp_path_factory, "nsw", write_nsw))  # no edits: init's file as written


@pytest.fixture(scope="session")
def fair_run(tmp_path_factory):
    run = initialised(tmp_path_factory, "fair", write_fair)
    # README, step 3: both scores flag a risk, so a positive decision is the harm
    for _ in range(2):
        edit(run, r"^(\s+)positive_decision: favourable$", r"\1positive_decision: harmful")
    return materialize(run)


@pytest.fixture(scope="session")
def fair_last_label_day_again(fair_run, tmp_path_factory) -> Run:
    """A copy of fair's materialised folder (warehouse, Dagster instance, project file) whose last day with a
    label that counts (within its model's horizon) is then materialised again alone, as the daily schedule runs
    a day: `materialize --start D --end D`."""
    fair_run.require_success()
    home = tmp_path_factory.mktemp("fair_again")
    shutil.copytree(fair_run.home, home, dirs_exist_ok=True, ignore=shutil.ignore_patterns("landing"))
    again = Run(home, fair_run.source, fair_run.tables, home / fair_run.config_path.name, fair_run.init_output)
    # labels_as_of: the day of a prediction day's last counted label, at least its label_lookback_days later
    day = again.query("SELECT max(labels_as_of) AS d FROM marts.model_health_daily")["d"][0].date()
    return materialize(again, days=(day, day))
