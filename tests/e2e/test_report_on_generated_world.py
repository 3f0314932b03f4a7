"""The daily report of the generated world shows the planted lift and the incident, with the warehouse's numbers."""

import json
import shutil
from datetime import date, timedelta
from html.parser import HTMLParser

import duckdb
import pandas as pd
import pytest

from orchestration.lib.alerts import load_alert_config
from orchestration.lib.report import write_report
from orchestration.lib.report_html import slug

pytestmark = pytest.mark.slow


class JsonBlocks(HTMLParser):
    """The summary and every figure of a report page (the JSON <script> blocks)."""

    def __init__(self):
        super().__init__()
        self.blocks, self._name = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("type") == "application/json":
            self._name = attrs.get("data-plot") or attrs["id"]

    def handle_data(self, data):
        if self._name:
            self.blocks[self._name] = json.loads(data)

    def handle_endtag(self, tag):
        self._name = None


def blocks(path) -> dict:
    parser = JsonBlocks()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.blocks


def test_report_contains_the_planted_lift_and_incident_dates(latest, tmp_path):
    p = latest
    with duckdb.connect(str(p.db), read_only=True) as conn:
        path = write_report(conn, p.last, tmp_path)
    page = blocks(path)
    summary = page["report-summary"]
    assert summary["as_of"] == p.last.isoformat()
    results = p.query(
        "SELECT * FROM attribution.experiment_results WHERE analysis_window = 'cumulative' AND as_of_date = ?", [p.last]
    )
    impact = p.query(
        "SELECT * FROM attribution.model_impact WHERE analysis_window = 'cumulative' AND as_of_date = ?", [p.last]
    )

    for experiment_id, truth in p.truth["experiments"].items():
        model = truth["model_id"]
        planted = truth["sample_average_treatment_effect"][p.last.isoformat()]
        shown = summary["models"][model]["lift"]["revenue_per_user"]
        # the planted sample average treatment effect lies inside the reported 95% CI of the last day
        assert shown["as_of_date"] == p.last.isoformat() and shown["experiment_id"] == experiment_id
        assert shown["ci_low"] <= planted["revenue_per_user"]["relative_lift"] <= shown["ci_high"], experiment_id
        # ... and the report shows the warehouse's headline estimate (CUPED where it applies)
        row = results[(results["experiment_id"] == experiment_id) & (results["metric"] == "revenue_per_user")].iloc[0]
        prefix = "cuped_" if row["estimate"] == "cuped" else ""
        assert [shown["relative_lift"], shown["ci_low"], shown["ci_high"]] == pytest.approx(
            [row[f"{prefix}relative_lift"], row[f"{prefix}relative_ci_low"], row[f"{prefix}relative_ci_high"]]
        )
        # the lift plot of the model ends on the last day with the same value
        lift_plot = page[f"lift-{slug(model)}"]
        lines = [t for t in lift_plot["data"] if t["name"] == "relative lift (95% CI shaded)"]
        assert any(
            t["x"][-1] == p.last.isoformat() and t["y"][-1] == pytest.approx(shown["relative_lift"]) for t in lines
        )

        value = summary["models"][model]["net_value"]
        money = impact[impact["experiment_id"] == experiment_id].iloc[0]
        assert value["treated_units"] == planted["treated_units"] == money["treated_units"]
        assert value["model_cost"] == pytest.approx(planted["model_cost"], abs=0.01)
        assert [value["value"], value["ci_low"], value["ci_high"]] == pytest.approx(
            [money["net_value"], money["net_value_ci_low"], money["net_value_ci_high"]]
        )

    incident = p.truth["incident"]
    model, start = incident["model_id"], date.fromisoformat(incident["start_date"])
    first_alert = summary["models"][model]["first_alert"]
    alerts = p.query("SELECT metric, min(date) AS first FROM marts.alerts WHERE model_id = ? GROUP BY metric", [model])
    health_plot = page[f"health-{slug(model)}"]
    for metric, marker in (("psi", "PSI alert"), ("expected_calibration_error", "ECE alert")):
        first = date.fromisoformat(first_alert[metric])
        assert start <= first <= start + timedelta(days=2), (metric, first, start)
        assert first == pd.Timestamp(alerts.set_index("metric").loc[metric, "first"]).date()
        markers = next(t for t in health_plot["data"] if t["name"] == marker)
        assert markers["x"][0] == first.isoformat()
    assert any(
        a["model_id"] == model and a["metric"] == "psi" and a["first_date"] == first_alert["psi"]
        for a in summary["alerts"]
    )
    # the drift plot crosses its threshold on the incident's days only
    psi = next(t for t in health_plot["data"] if t["name"] == "max PSI")
    threshold = load_alert_config().rule("psi", model)["above"]
    above = [d for d, v in zip(psi["x"], psi["y"]) if v is not None and v > threshold]
    assert above and min(above) >= start.isoformat()


def test_daily_runs_write_the_report_and_the_cli_renders_any_day(latest, tmp_path, capsys):
    from orchestration.cli import main

    # the fixture's last run (a two-day backfill) wrote one report, for its last day, next to its warehouse
    written = sorted(q.name for q in (latest.db.parent / "reports").glob("*.html"))
    assert written == [f"impact_ledger_{latest.last.isoformat()}.html"]

    db = tmp_path / "copy.duckdb"
    shutil.copy(latest.db, db)
    day = date.fromisoformat(latest.truth["incident"]["start_date"])
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "out"), "--date", day.isoformat()]) == 0
    path = tmp_path / "out" / f"impact_ledger_{day.isoformat()}.html"
    assert capsys.readouterr().out.strip() == str(path)
    summary = blocks(path)["report-summary"]
    assert summary["as_of"] == day.isoformat()
    assert all(v["lift"]["revenue_per_user"]["as_of_date"] == day.isoformat() for v in summary["models"].values())


class VisibleText(HTMLParser):
    """A report page's text as a reader sees it (no scripts or styles), one line per text run."""

    def __init__(self):
        super().__init__()
        self.lines, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.lines.append(" ".join(data.split()))


def visible_text(path) -> list[str]:
    parser = VisibleText()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.lines


def test_the_cli_report_from_the_analytics_snapshot_says_what_the_runs_own_report_says(latest, tmp_path, monkeypatch):
    # what analysts render from the snapshot is the run's own report (tests/unit/test_publish.py: the report's
    # staging and intermediate inputs, whose absence dropped a monitoring-only model's cost in a trial)
    from orchestration.cli import main

    monkeypatch.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(latest.db.parent / "analytics.duckdb"))
    assert main(["report", "--out", str(tmp_path), "--date", latest.last.isoformat()]) == 0
    name = f"impact_ledger_{latest.last.isoformat()}.html"
    runs_own, from_snapshot = latest.db.parent / "reports" / name, tmp_path / name
    assert blocks(from_snapshot)["report-summary"] == blocks(runs_own)["report-summary"]
    own, cli = visible_text(runs_own), visible_text(from_snapshot)
    # what needs the new version's predictions (not published) is all that may differ: said so, not dropped
    differ = [line for line in own if line not in cli] + [line for line in cli if line not in own]
    assert all("score PSI not computed" in line or "score PSI" in line for line in differ), differ
    assert any("cost" in line for line in cli)
