"""The project file: validation messages, defaults, dbt vars; the days a landing zone covers; the CLI's range."""

import argparse
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from orchestration.cli import CliError, _partitions_cover, _run_range
from orchestration.lib.project_config import ConfigError, ProjectConfig, config_dbt_vars, load_config, parse_config
from orchestration.lib.settings import EXPECTATIONS_DIR
from orchestration.lib.source_range import SourceRangeError, source_date_range

DEMO = EXPECTATIONS_DIR / "demo.yml"


def test_the_demo_file_declares_the_demo_and_nothing_else_does():
    demo = load_config(DEMO)
    assert set(demo.models) == {"recommender", "churn_offer"}
    assert demo.attribute_columns["gender_x_age_band"] == ["gender", "age_band"]
    assert demo.okrs["objectives"]
    # the defaults name no model, attribute or OKR
    defaults = ProjectConfig()
    assert defaults.models == {} and defaults.protected_attributes == [] and defaults.okrs == {}
    assert defaults.model("anything").positive_decision == "favourable"
    # the US spelling is the same decision (a trial's project file said "favorable" and was refused)
    spelt = parse_config({"models": {"m": {"positive_decision": "favorable"}}})
    assert spelt.model("m").positive_decision == "favourable"


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        (
            "models:\n  m: {label_horizon_days: 0}\n",
            "models.m.label_horizon_days",
            "greater than or equal to 1 (got 0)",
        ),
        (
            "models:\n  m: {positive_decision: bad}\n",
            "models.m.positive_decision",
            "'favourable' or 'harmful' (got 'bad')",
        ),
        ("models:\n  m: {alerts: {psii: {above: 1}}}\n", "models.m.alerts", "unknown alert rule(s) ['psii']"),
        (
            "models:\n  m: {drift_reference: {start: 2026-01-05}}\n",
            "models.m.drift_reference",
            "need both start and end",
        ),
        (  # its key named, with what it holds (a trial's said '(top level)')
            "protected_attributes: [country]\nintersections: [[country, company_size]]\n",
            "intersections",
            "['company_size'] not in protected_attributes ['country'] (got [['country', 'company_size']])",
        ),
        ("protected_attributes: [race]\nintersections: [[race]]\n", "intersections", "needs at least two attributes"),
        (  # a misspelt attribute meets the intersection's check first: the spelling it expects is named
            "protected_attributes: [studnet, band]\nintersections: [[student, band]]\n",
            "intersections",
            "['student'] not in protected_attributes ['studnet', 'band']; is 'studnet' meant to be 'student'?",
        ),
        ("partitions: {start: yesterday}\n", "partitions.start", "(got 'yesterday')"),
        ("gates:\n  rows: {max_share: 2}\n", "gates.rows.max_share", "less than or equal to 1 (got 2)"),
        ("modles: {}\n", "modles", "unknown key"),
    ],
)
def test_errors_name_the_file_the_key_and_the_value(tmp_path, text, key, fragment):
    path = tmp_path / "impact_ledger.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: key '{key}'")
    assert fragment in message


@pytest.mark.parametrize(
    "text, key, nearest",
    [
        ("modles: {}\n", "modles", "models"),  # top level
        ("alerts: {min_labeled: 10}\n", "alerts.min_labeled", "min_labelled"),  # a section
        ("models:\n  m: {threshhold: 0.5}\n", "models.m.threshhold", "threshold"),  # a model, keyed by its name
        ("gates:\n  volume: {tables: {orders: {min_cout: 3}}}\n", "gates.volume.tables.orders.min_cout", "min_count"),
        (  # through an optional section
            "sources:\n  orders: {database: {url: 'postgresql://h/db', tabel: x}}\n",
            "sources.orders.database.tabel",
            "table",
        ),
    ],
)
def test_an_unknown_key_names_the_nearest_known_key_of_its_section(tmp_path, text, key, nearest):
    path = tmp_path / "impact_ledger.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: key '{key}': unknown key; did you mean '{nearest}'? (see the README")


def test_an_unknown_key_unlike_any_known_one_suggests_none(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"alerts": {"zzz": 1}})
    assert str(err.value) == (
        "project config: key 'alerts.zzz': unknown key (see the README's project-file reference) (got 1)"
    )


def test_not_yaml_and_not_a_mapping_are_clear(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="c.yml: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="expected a mapping of keys at the top level, got list"):
        parse_config([1, 2], path)


def test_no_file_means_defaults_and_says_what_it_assumed(tmp_path, monkeypatch):
    monkeypatch.delenv("IMPACT_LEDGER_CONFIG")
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.path is None
    said = " ".join(config.assumptions())
    assert "no project file" in said and "no models declared" in said and "fairness is not assessed" in said
    assert "no models declared" not in " ".join(config.assumptions(predictions=False))
    (tmp_path / "impact_ledger.yml").write_text("currency: EUR\n")
    assert load_config().currency == "EUR"  # ./impact_ledger.yml is the default path
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="missing.yml: no such file"):
        load_config()


def test_dbt_vars_carry_models_attributes_and_metric_overrides():
    config = parse_config(
        {
            "models": {
                "fraud": {
                    "positive_decision": "harmful",
                    "label_horizon_days": 120,
                    "threshold": 0.7,
                    "drift_reference": {"start": "2026-01-01", "end": "2026-01-14"},
                    "alerts": {"psi": {"pool_days": 14}},
                },
                "ranker": {},
            },
            "alerts": {"rules": {"psi": {"above": 0.3, "pool_days": 10}}},
            "protected_attributes": ["race", "sex"],
            "intersections": [["race", "sex"]],
            "attribution": {
                "value_metric": "conversion",
                "alpha": 0.1,
                "power": 0.8,
                "sequential_tau": 5000,
                "multiple_testing": "holm",
            },
        }
    )
    got = config_dbt_vars(config)
    assert got["protected_attributes"] == {"race": ["race"], "sex": ["sex"], "race_x_sex": ["race", "sex"]}
    assert got["model_settings"]["fraud"] == {
        "threshold": 0.7,
        "positive_decision": "harmful",
        "label_horizon_days": 120,
        "reference_days": None,
        "reference_start": "2026-01-01",
        "reference_end": "2026-01-14",
        "psi_pool_days": 14,
    }
    assert got["model_settings"]["ranker"]["reference_days"] == 7
    # the PSI rule's pool: a model's own, else the project file's rule, for undeclared models too
    assert got["model_settings"]["ranker"]["psi_pool_days"] == 10 and got["default_psi_pool_days"] == 10
    assert config_dbt_vars(parse_config({}))["default_psi_pool_days"] == 7
    assert got["max_label_horizon_days"] == 120
    assert got["attribution"]["value_metric"] == "conversion"
    assert "experiment_metrics" not in got  # not set: dbt_project.yml's defaults apply


def test_dbt_var_prefers_the_project_file(tmp_path, monkeypatch):
    from orchestration.lib.settings import dbt_var

    path = tmp_path / "impact_ledger.yml"
    path.write_text(
        "attribution: {value_metric: conversion, alpha: 0.1, power: 0.9, sequential_tau: 100, multiple_testing: bh}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(path))
    assert dbt_var("attribution")["alpha"] == 0.1
    assert dbt_var("experiment_metrics")["conversion"]["type"] == "proportion"  # dbt_project.yml default


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("experiment_metrics: {}\n", "experiment_metrics: declare at least one"),
        (
            "experiment_metrics:\n  conv: {type: proportion, measure: complete_orders}\n",
            "experiment_metrics.conv: unknown measure(s) ['complete_orders']; experiment_measures are [",
        ),
        ("experiment_metrics:\n  aov: {type: ratio, numerator: revenue}\n", "takes numerator and denominator"),
        (
            "experiment_metrics:\n  conv: {type: proportion, measure: completed_orders, drection: higher_is_better}\n",
            "experiment_metrics.conv.drection: Extra inputs are not permitted",
        ),
        ("experiment_metrics:\n  conv: {type: share, measure: completed_orders}\n", "experiment_metrics.conv.type"),
        ("experiment_measures:\n  spend: {source: orders, aggregate: sum}\n", "needs an expression"),
        ("experiment_measures:\n  spend: {source: payments, aggregate: count}\n", "experiment_measures.spend.source"),
        (
            "experiment_measures:\n  n-orders: {source: orders, aggregate: count}\n",
            "experiment_measures.n-orders: a name of letters, digits and _",
        ),
        # measures replaced, metrics left to the defaults: the default metrics name measures no longer declared
        (
            "experiment_measures:\n  spend: {source: orders, aggregate: count}\n",
            "unknown measure(s) ['completed_orders']",
        ),
        (
            "attribution: {value_metric: revenue}\n",
            "attribution.value_metric: 'revenue' is not an experiment metric; set it to one of",
        ),
    ],
)
def test_experiment_metrics_are_checked_against_their_measures_before_dbt_renders_them(tmp_path, text, fragment):
    path = tmp_path / "impact_ledger.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: key '(top level)'")
    assert fragment in str(err.value)


def test_attribution_keys_left_out_keep_their_defaults(tmp_path, monkeypatch):
    from orchestration.lib.settings import dbt_project_vars, dbt_var

    path = tmp_path / "impact_ledger.yml"
    path.write_text("attribution: {alpha: 0.1}\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(path))
    defaults = dbt_project_vars()["attribution"]
    # the value metric (read by the model-impact step) is still there, not replaced away with the mapping
    assert dbt_var("attribution") == defaults | {"alpha": 0.1}


def test_a_project_of_its_own_experiment_metrics_loads_and_reaches_dbt():
    from orchestration.lib.settings import dbt_project_vars

    defaults = dbt_project_vars()
    # the defaults pass the same check (the project file sets one of the three, the others are checked with it)
    parse_config({"experiment_metrics": defaults["experiment_metrics"]})
    config = parse_config(
        {
            "experiment_measures": {
                "spend": {"source": "orders", "aggregate": "sum", "expression": "revenue"},
                "visits": {"source": "sessions", "aggregate": "count"},
            },
            "experiment_metrics": {
                "spend_per_user": {"type": "mean", "measure": "spend", "covariate": "visits"},
                "spend_per_visit": {"type": "ratio", "numerator": "spend", "denominator": "visits"},
            },
            "attribution": {"value_metric": "spend_per_user"},
        }
    )
    got = config_dbt_vars(config)
    assert set(got["experiment_metrics"]) == {"spend_per_user", "spend_per_visit"}
    assert got["experiment_measures"]["spend"]["expression"] == "revenue"


def test_the_value_metric_says_when_its_fall_is_the_value(tmp_path, monkeypatch):
    # a trial's claims cost per patient (lower_is_better) as the value metric: its saving read as a loss
    from orchestration.lib.settings import value_metric

    path = tmp_path / "project.yml"
    path.write_text(
        "experiment_measures:\n  claims: {source: orders, aggregate: sum, expression: revenue}\n"
        "experiment_metrics:\n  claims_per_patient: {type: mean, measure: claims, direction: lower_is_better}\n"
        "  claims_made: {type: proportion, measure: claims}\n"
        "attribution: {value_metric: claims_per_patient}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(path))
    assert value_metric() == ("claims_per_patient", True)
    path.write_text(path.read_text().replace("value_metric: claims_per_patient", "value_metric: claims_made"))
    assert value_metric() == ("claims_made", False)


# ------------------------------------------------------------ source range


def test_undated_csv_is_placed_by_its_time_column_in_utc(tmp_path):
    (tmp_path / "predictions").mkdir()
    (tmp_path / "labels").mkdir()
    pd.DataFrame(
        {"prediction_id": ["a", "b"], "predicted_at": ["2025-03-01T23:30:00-05:00", "2025-03-09T08:00:00Z"]}
    ).to_csv(tmp_path / "predictions" / "all.csv", index=False)
    # a label months later extends the range: its day needs a partition
    pd.DataFrame({"prediction_id": ["a"], "labeled_at": ["2025-07-01 10:00:00"]}).to_csv(
        tmp_path / "labels" / "l.csv", index=False
    )
    # -05:00 at 23:30 is 04:30 UTC the next day
    assert source_date_range(tmp_path) == (date(2025, 3, 2), date(2025, 7, 1))


def test_dated_names_and_truth_json(tmp_path):
    (tmp_path / "orders").mkdir()
    for day in ("2024-02-03", "2024-02-05"):
        (tmp_path / "orders" / f"orders_{day}.parquet").write_bytes(b"")  # names alone decide
    assert source_date_range(tmp_path) == (date(2024, 2, 3), date(2024, 2, 5))
    (tmp_path / "truth.json").write_text('{"start_date": "2024-01-01", "end_date": "2024-01-31"}')
    assert source_date_range(tmp_path) == (date(2024, 1, 1), date(2024, 1, 31))
    # a user's own truth.json (a trial's held its answers): not a generated world's, so the file names decide
    for own in ('{"lift": 0.04}', "[1, 2]", '{"start_date": "soon"}', "not json"):
        (tmp_path / "truth.json").write_text(own)
        assert source_date_range(tmp_path) == (date(2024, 2, 3), date(2024, 2, 5))


def test_a_source_without_dated_rows_says_what_to_pass(tmp_path):
    (tmp_path / "users").mkdir()
    pd.DataFrame({"user_id": ["u"]}).to_csv(tmp_path / "users" / "users.csv", index=False)
    with pytest.raises(SourceRangeError, match="pass --start and --end"):
        source_date_range(tmp_path)


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(start=kw.get("start"), end=kw.get("end"))


def test_start_and_end_given_need_no_dates_from_the_source(tmp_path, monkeypatch):
    (tmp_path / "users").mkdir()  # nothing dated: inference would fail, and is not needed
    # the source given is the one read, not the configured landing zone (a fresh clone's data/raw, dated by make demo,
    # answered for it)
    elsewhere = tmp_path / "configured" / "orders"
    elsewhere.mkdir(parents=True)
    (elsewhere / "orders_2025-01-05.csv").write_text("order_id,user_id,ordered_at,revenue,status\n")
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(elsewhere.parent))
    assert _run_range(_args(start=date(2025, 1, 1), end=date(2025, 1, 3)), tmp_path) == (
        date(2025, 1, 1),
        date(2025, 1, 3),
        None,
    )
    with pytest.raises(CliError, match="--end 2025-01-01 is before --start 2025-01-03"):
        _run_range(_args(start=date(2025, 1, 3), end=date(2025, 1, 1)), tmp_path)
    with pytest.raises(CliError, match="pass --start and --end"):
        _run_range(_args(start=date(2025, 1, 1)), tmp_path)


def test_a_range_before_the_partitions_is_refused_up_front(tmp_path, monkeypatch):
    path = tmp_path / "impact_ledger.yml"
    path.write_text("partitions: {start: 2026-03-01}\n")
    monkeypatch.delenv("IMPACT_LEDGER_START_DATE", raising=False)
    with pytest.raises(
        CliError, match=r"2026-02-27 is before the first daily partition \(.*impact_ledger.yml: key 'partitions.start'"
    ):
        _partitions_cover(load_config(path), date(2026, 2, 27), None)
    # from the data: the partitions start where the data (or the range asked for) starts
    path.write_text("partitions: {start: from_data}\n")
    _partitions_cover(load_config(path), date(2025, 5, 2), date(2025, 5, 1))
    import os

    assert os.environ["IMPACT_LEDGER_START_DATE"] == "2025-05-01"
    with pytest.raises(CliError, match="IMPACT_LEDGER_START_DATE=2025-05-01"):
        _partitions_cover(load_config(path), date(2025, 4, 1), None)
    assert Path(os.environ["IMPACT_LEDGER_CONFIG"]).name == "demo.yml"  # untouched by these calls


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    # a trial added `timezone: America/New_York` above init's `timezone: UTC`: YAML kept the last, the project stayed
    # in UTC and nothing said so
    path = tmp_path / "impact_ledger.yml"
    path.write_text("timezone: America/New_York\ncurrency: USD\ntimezone: UTC\n")
    with pytest.raises(ConfigError, match=r"'timezone' is given twice in one mapping \(line 1 and line 3\)"):
        load_config(path)
    path.write_text("models:\n  m:\n    threshold: 0.5\n    threshold: 0.7\n")  # inside a model too
    with pytest.raises(ConfigError, match=r"'threshold' is given twice"):
        load_config(path)
    path.write_text("timezone: America/New_York\ncurrency: USD\n")
    assert load_config(path).config.timezone == "America/New_York"
