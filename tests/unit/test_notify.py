"""Alert notifications: what is sent, that it is sent once, and that one broken notifier loses nothing."""

import json
import logging
from datetime import date, datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest

from orchestration.defs.model_health.alerts import ALERTS_SCHEMA
from orchestration.lib.bias import VERDICTS_SCHEMA
from orchestration.lib.notify import (
    JsonLinesNotifier,
    LogNotifier,
    PREDICTION_DAYS_SQL,
    NotifyCursor,
    WebhookNotifier,
    alert_notifications,
    build_notifiers,
    dispatch,
    gate_notifications,
    load_notify_config,
    read_candidates,
    select_new,
)
from orchestration.lib.warehouse import ensure_table


def alerts_frame(rows):
    columns = ["date", "model_id", "model_version", "metric", "subject", "value", "threshold", "rule"]
    return pd.DataFrame(rows, columns=columns).assign(date=lambda f: pd.to_datetime(f["date"]))


ALERT_ROWS = [
    ("2026-10-10", "recommender", "v1", "psi", "basket_size", 0.41, 0.2, "> 0.2"),
    ("2026-10-10", "recommender", "v1", "expected_calibration_error", "", 0.13, 0.08, "> 0.08"),
    ("2026-10-11", "recommender", "v1", "psi", "tenure_days", 0.52, 0.2, "> 0.2"),
]
ALERTS = alerts_frame(ALERT_ROWS)
GATES = pd.DataFrame(
    {
        "date": pd.to_datetime(["2026-10-10", "2026-10-11", "2026-10-11"]),
        "suite": ["raw_orders", "raw_orders", "raw_labels"],
        "table_name": ["orders", "orders", "labels"],
        "passed": [True, False, True],
        "failed_expectations": ["[]", '["revenue_not_negative"]', "[]"],
        "rows_validated": [900, 880, 400],
    }
)


def test_one_notification_per_breach_and_per_failed_gate():
    alerts = alert_notifications(ALERTS)
    assert [(n.date, n.metric, n.subject, n.value) for n in alerts] == [
        ("2026-10-10", "expected_calibration_error", "", 0.13),
        ("2026-10-10", "psi", "basket_size", 0.41),
        ("2026-10-11", "psi", "tenure_days", 0.52),
    ]
    gates = gate_notifications(GATES)
    assert [(n.kind, n.date, n.subject, n.value) for n in gates] == [("gate", "2026-10-11", "raw_orders", 880.0)]
    assert "revenue_not_negative" in gates[0].message
    # a backfill's failed day is held back, the other days go on: "publication blocked" read as the whole run's
    assert gates[0].message.endswith(
        "that day is held back: its rows stay out of the marts until it passes (the other days of a backfill go on)"
    )
    # an experiment design gate holds no day back: it untrusts that day's experiment results only
    design = GATES.iloc[[1]].assign(suite="raw_experiment_variants", table_name="experiment_variants")
    [said] = gate_notifications(design)
    assert said.message.startswith("experiment design gate raw_experiment_variants failed on 2026-10-11")
    assert said.message.endswith("that day's experiment results are untrustworthy (the models' marts were built)")
    # two model versions breaching the same rule on the same day are one notification
    two_versions = alerts_frame(
        [("2026-10-10", "recommender", v, "psi", "age", 0.3, 0.2, "> 0.2") for v in ("v1", "v2")]
    )
    assert len(alert_notifications(two_versions)) == 1


def test_a_key_is_sent_once_even_when_old_days_are_re_evaluated():
    first_tick, cursor = select_new(alert_notifications(ALERTS), NotifyCursor(), date(2026, 10, 11))
    assert len(first_tick) == 3
    # the next run re-evaluates 10-10 and 10-11 (label lookback) and finds one new breach
    more = alerts_frame([*ALERT_ROWS, ("2026-10-11", "recommender", "v1", "precision_drop", "", 0.31, 0.2, "> 0.2")])
    second_tick, cursor = select_new(
        alert_notifications(more), NotifyCursor.from_json(cursor.to_json()), date(2026, 10, 12)
    )
    assert [(n.date, n.metric) for n in second_tick] == [("2026-10-11", "precision_drop")]
    third_tick, _ = select_new(alert_notifications(more), cursor, date(2026, 10, 12))
    assert third_tick == []


def test_a_failed_gate_seen_twice_in_one_tick_is_sent_once():
    # the check's failure event (no row count) and the snapshot's gate row (its count) carry one key: the
    # daemon sent both (README: exactly once)
    from dataclasses import replace

    (from_snapshot,) = gate_notifications(GATES)
    from_event = replace(from_snapshot, value=None)
    assert from_event.dedup_key == from_snapshot.dedup_key
    new, cursor = select_new([from_event, from_snapshot], NotifyCursor(), date(2026, 10, 11))
    assert new == [from_event] and list(cursor.sent) == [from_event.dedup_key]


def test_rows_older_than_the_horizon_are_neither_sent_nor_remembered():
    new, cursor = select_new(alert_notifications(ALERTS), NotifyCursor(), date(2026, 10, 20), horizon_days=9)
    assert [n.date for n in new] == ["2026-10-11"]  # 10-10 is 10 days before the newest day
    _, later = select_new([], cursor, date(2026, 10, 21), horizon_days=9)
    assert later.sent == {}  # 10-11 fell out of the horizon: forgotten, and never sent again either
    again, _ = select_new(alert_notifications(ALERTS), later, date(2026, 10, 21), horizon_days=9)
    assert again == []


def test_json_lines_file_holds_one_object_per_notification(tmp_path):
    sent_at = datetime(2026, 10, 12, 6, 30, tzinfo=timezone.utc)
    notifier = JsonLinesNotifier(tmp_path / "alerts", clock=lambda: sent_at)
    notes = alert_notifications(ALERTS)
    notifier.send(notes[:2])
    notifier.send(notes[2:])
    lines = [json.loads(line) for line in (tmp_path / "alerts" / "notifications.jsonl").read_text().splitlines()]
    assert [line["dedup_key"] for line in lines] == [n.dedup_key for n in notes]
    assert lines[1] == {
        "kind": "alert",
        "date": "2026-10-10",
        "model_id": "recommender",
        "metric": "psi",
        "subject": "basket_size",
        "value": 0.41,
        "threshold": 0.2,
        "message": notes[1].message,
        "until": None,
        "dedup_key": "alert|2026-10-10|recommender|psi|basket_size",
        "sent_at": "2026-10-12T06:30:00+00:00",
    }


def test_webhook_posts_one_json_batch_through_the_transport():
    calls = []

    def transport(url, body, headers, timeout):  # the network boundary
        calls.append((url, json.loads(body), headers, timeout))
        return 204

    notes = alert_notifications(ALERTS)
    WebhookNotifier("https://hooks.example.com/T1", post=transport, timeout=3).send(notes)
    [(url, payload, headers, timeout)] = calls
    assert url == "https://hooks.example.com/T1" and timeout == 3
    assert headers == {"Content-Type": "application/json"}
    assert [n["dedup_key"] for n in payload["notifications"]] == [n.dedup_key for n in notes]
    assert payload["text"].splitlines()[0] == "Impact Ledger: 3 new notification(s)"
    with pytest.raises(RuntimeError, match="HTTP 500"):
        WebhookNotifier("https://hooks.example.com/T1", post=lambda *a: 500).send(notes)
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("hooks.example.com")


def test_a_failing_notifier_does_not_stop_the_others(tmp_path, caplog):
    def down(*args):
        raise ConnectionError("connection refused")

    logger = logging.getLogger("test_notify")
    notifiers = [
        WebhookNotifier("https://hooks.example.com/x", post=down),
        JsonLinesNotifier(tmp_path),
        LogNotifier(logger),
    ]
    notes = gate_notifications(GATES)
    with caplog.at_level(logging.WARNING, logger="test_notify"):
        failed = dispatch(notes, notifiers, logger)
    assert failed == {"webhook": "connection refused"}
    assert len((tmp_path / "notifications.jsonl").read_text().splitlines()) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("notifier webhook failed" in m for m in messages)
    assert any("quality gate raw_orders failed on 2026-10-11" in m for m in messages)


def test_webhook_only_when_configured(tmp_path):
    thresholds = tmp_path / "impact_ledger.yml"
    thresholds.write_text("currency: EUR\n")
    assert load_notify_config(thresholds, env={}).webhook_url is None
    assert [n.name for n in build_notifiers(logging.getLogger(), tmp_path, load_notify_config(thresholds, env={}))] == [
        "log",
        "jsonl",
    ]

    thresholds.write_text(
        "notify:\n  webhook_url: https://hooks.example.com/from-yaml\n  horizon_days: 20\n"
        "models:\n  fraud:\n    label_horizon_days: 10\n"
    )
    config = load_notify_config(thresholds, env={})
    assert (config.webhook_url, config.horizon_days) == ("https://hooks.example.com/from-yaml", 20)
    env = {"IMPACT_LEDGER_ALERT_WEBHOOK": "https://hooks.example.com/from-env"}
    assert load_notify_config(thresholds, env=env).webhook_url == "https://hooks.example.com/from-env"
    assert [
        n.name for n in build_notifiers(logging.getLogger(), tmp_path, load_notify_config(thresholds, env=env))
    ] == ["log", "jsonl", "webhook"]

    thresholds.write_text("notify:\n  webhook: https://typo.example.com\n")
    with pytest.raises(ValueError, match="key 'notify.webhook': unknown key"):
        load_notify_config(thresholds, env={})
    thresholds.write_text("notify:\n  horizon_days: 7\n")
    # alerts are re-evaluated label_lookback_days (7, the coverage rule's after_days) back, plus the run's day and one of slack
    with pytest.raises(ValueError, match="notify.horizon_days must be an integer >= 9"):
        load_notify_config(thresholds, env={})
    with pytest.raises(ValueError, match="IMPACT_LEDGER_ALERT_WEBHOOK must be an http"):
        load_notify_config(thresholds, env={"IMPACT_LEDGER_ALERT_WEBHOOK": "hooks.example.com"})


def test_the_demo_project_file_configures_no_webhook(monkeypatch):
    monkeypatch.delenv("IMPACT_LEDGER_ALERT_WEBHOOK", raising=False)
    assert load_notify_config().webhook_url is None


def test_the_horizon_reaches_the_longest_label_horizon(tmp_path):
    # a mortgage model's labels land up to 89 days late: its precision alert of a day exists only then, and the
    # default 31-day horizon dropped every one of them
    project = tmp_path / "impact_ledger.yml"
    project.write_text("models:\n  mortgage:\n    label_horizon_days: 89\n")
    horizon = load_notify_config(project, env={}).horizon_days
    assert horizon == 90
    newest = date(2026, 12, 31)
    conn = duckdb.connect()
    ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
    for back in (0, 60, 91):  # 60: older than notify.horizon_days, within the label horizon; 91: older than both
        day = newest - timedelta(days=back)
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES (?, 'mortgage', 'v1', 'precision_drop', '', 0.4, 0.6, 'p < 0.01')",
            [day],
        )
    candidates, day = read_candidates(conn, horizon)
    new, _ = select_new(candidates, NotifyCursor(), day, horizon)
    assert [n.date for n in new] == ["2026-11-01", "2026-12-31"]
    # a project without a declared model: every model's label horizon is the default 30 days, so 31 stays
    project.write_text("currency: EUR\n")
    assert load_notify_config(project, env={}).horizon_days == 31


def verdict(day: int, passed: bool, ratio: float, model: str = "mortgage"):
    """A marts.bias_verdicts row of the window ending 2026-10-<day> (disparate impact the only metric judged)."""
    end = date(2026, 10, day)
    return {
        "date": end,
        "window_start": end - timedelta(days=13),
        "model_id": model,
        "attribute": "afam",
        "positive_decision": "harmful",
        "disparate_impact_ratio": ratio,
        "passes_disparate_impact": passed,
        "passes_equal_opportunity": True,
        "passes_equalized_odds": True,
        "passes_calibration": True,
        "passed": passed,
        "flagged_groups_disparate_impact": "" if passed else "1",
        "eligible_groups": "0, 1",
        "disparate_impact_min": 0.8,
    }


def verdicts_warehouse(rows) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    ensure_table(conn, "marts.bias_verdicts", VERDICTS_SCHEMA)
    add_verdicts(conn, rows)
    return conn


def add_verdicts(conn, rows) -> None:
    conn.register("_rows", pd.DataFrame(rows).reindex(columns=list(VERDICTS_SCHEMA)))
    conn.execute("INSERT INTO marts.bias_verdicts BY NAME SELECT * FROM _rows")
    conn.unregister("_rows")


def notify_run(conn, cursor, horizon_days=31):
    """One `materialize --notify`: the candidates of the warehouse, those not sent yet, the next cursor."""
    candidates, newest = read_candidates(conn, horizon_days)
    new, cursor = select_new(candidates, cursor, newest, horizon_days)
    return new, NotifyCursor.from_json(cursor.to_json())


def test_a_fairness_verdict_is_notified_when_it_starts_failing_not_every_day_it_fails():
    # afam's disparate impact failed (0.33 < 0.80) on every run, and nobody was told
    conn = verdicts_warehouse(
        [verdict(1, True, 0.92), verdict(2, True, 0.9)] + [verdict(d, False, 0.33) for d in range(3, 7)]
    )
    new, cursor = notify_run(conn, NotifyCursor())
    [n] = new
    assert (n.kind, n.date, n.until, n.model_id, n.subject, n.value, n.threshold) == (
        "fairness",
        "2026-10-03",
        "2026-10-06",
        "mortgage",
        "afam",
        0.33,
        0.8,
    )
    assert n.message.startswith(
        "fairness of mortgage / afam fails from the window 2026-09-20 .. 2026-10-03 through the one ending 2026-10-06; "
        "the first failing window's figures (the newest: impact-ledger summary): "
    )
    assert "disparate impact ratio" in n.message and "0.33 < 0.80" in n.message
    assert (
        "disadvantaged (flagged more often than another group, beyond the limit and noise): afam=1" in n.message
    )  # a coded group with its attribute
    # the next run over the same days, and one more failing day: nothing new
    assert notify_run(conn, cursor)[0] == []
    add_verdicts(conn, [verdict(7, False, 0.35)])
    new, cursor = notify_run(conn, cursor)
    assert new == []
    # a pass within noise is a pass, then a new failure: told again
    add_verdicts(conn, [verdict(8, True, 0.76), verdict(9, False, 0.3)])
    new, cursor = notify_run(conn, cursor)
    assert [(n.date, n.until) for n in new] == [("2026-10-09", "2026-10-09")]


def test_a_fairness_failure_first_seen_and_lasting_longer_than_the_horizon_is_sent_once():
    conn = verdicts_warehouse([verdict(1, False, 0.4)])
    sent = []
    cursor = NotifyCursor()
    for day in range(1, 31):  # a daily run each day, the failure lasting all month; a 9-day horizon
        if day > 1:
            add_verdicts(conn, [verdict(day, False, 0.4)])
        new, cursor = notify_run(conn, cursor, horizon_days=9)
        sent += new
    assert [(n.date, n.until) for n in sent] == [("2026-10-01", "2026-10-01")]
    # a failure that ended before the horizon is history: a backfill does not send it
    backfill = verdicts_warehouse(
        [verdict(1, False, 0.4), verdict(2, True, 0.9)] + [verdict(d, True, 0.9) for d in range(3, 20)]
    )
    assert notify_run(backfill, NotifyCursor(), horizon_days=9)[0] == []


def test_windows_ending_after_a_model_stopped_predicting_raise_no_new_fairness_notification():
    # a trial's model stopped on its last prediction day; the windows after it held fewer and fewer of its days and
    # flickered fail, pass, fail: a second "fails from the window" 53 days after it stopped
    rows = [verdict(d, False, 0.4) for d in range(1, 6)] + [verdict(6, True, 0.85), verdict(7, False, 0.5)]
    conn = verdicts_warehouse(rows)
    flickered = [(n.date, n.until) for n in notify_run(conn, NotifyCursor())[0]]
    assert flickered == [("2026-10-01", "2026-10-05"), ("2026-10-07", "2026-10-07")]  # without the health mart
    # its health mart says it last predicted on 10-05: the windows after it are not read
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute(
        "CREATE TABLE marts.model_health_daily AS SELECT DATE '2026-10-01' + INTERVAL (i) DAY AS date, 'mortgage' "
        "AS model_id, CASE WHEN i < 5 THEN 40 ELSE 0 END AS predictions FROM range(7) t(i)"
    )
    assert [(n.date, n.until) for n in notify_run(conn, NotifyCursor())[0]] == [("2026-10-01", "2026-10-05")]


def test_a_models_alerts_of_one_metric_on_many_subjects_of_a_day_are_one_notification():
    # a trial's 64 pixel features over 11 one-vs-rest views: 929 drift notifications in one tick
    from orchestration.lib.notify import GROUPED_AT, GROUPED_NAMED, grouped

    many = GROUPED_NAMED + 2
    rows = [("2026-10-10", "ocr", "v1", "psi", f"px{k:02d}", 0.2 + k / 100, 0.2, "> 0.2") for k in range(many)]
    rows += [("2026-10-10", "ocr", "v1", "psi", f"px{k:02d}", 0.3, 0.2, "> 0.2") for k in range(2)]  # other version
    rows += [("2026-10-11", "ocr", "v1", "psi", f"py{k:02d}", 0.5, 0.2, "> 0.2") for k in range(GROUPED_AT)]
    rows += [("2026-10-10", "other", "v1", "psi", f"px{k:02d}", 0.5, 0.2, "> 0.2") for k in range(GROUPED_AT + 1)]
    notes = grouped(alert_notifications(alerts_frame(rows)))
    keys = [n.dedup_key for n in notes]
    assert keys == [
        "alert|2026-10-10|ocr|psi|*",
        "alert|2026-10-10|other|psi|*",
        *[f"alert|2026-10-11|ocr|psi|py{k:02d}" for k in range(GROUPED_AT)],  # as many as GROUPED_AT: one each
    ]
    grouped = notes[0]
    assert grouped.value == pytest.approx(0.2 + (many - 1) / 100)  # the highest
    named = ", ".join(f"px{k:02d} {round(0.2 + k / 100, 4)}" for k in range(many - 1, many - 1 - GROUPED_NAMED, -1))
    assert (
        grouped.message
        == f"ocr (v1) on 2026-10-10: psi of {many} subjects: {named} and 2 more (highest first; rule > 0.2)"
    )


def test_a_subject_that_joins_a_grouped_day_later_is_sent_then_and_the_sent_ones_are_not_again():
    # a re-trial halved 34 more pixels of a day already notified as one group: its 363 new alerts were never sent
    from orchestration.lib.notify import grouped

    def day_of(subjects):
        return alert_notifications(
            alerts_frame([("2026-10-10", "ocr", "v1", "psi", s, 0.5, 0.2, "> 0.2") for s in subjects])
        )

    first, cursor = select_new(day_of([f"px{k:02d}" for k in range(8)]), NotifyCursor(), date(2026, 10, 10))
    assert [n.subject for n in grouped(first)] == ["*"] and "psi of 8 subjects" in grouped(first)[0].message
    later, cursor = select_new(day_of([f"px{k:02d}" for k in range(30)]), cursor, date(2026, 10, 10))
    [sent] = grouped(later)
    assert "psi of 22 subjects" in sent.message and "px00" not in sent.message  # only the new ones
    again, _ = select_new(day_of([f"px{k:02d}" for k in range(30)]), cursor, date(2026, 10, 10))
    assert again == []


def test_a_second_change_of_the_same_source_day_is_notified_too():
    # a re-trial's second corrected file of an already-notified orders day was never sent (the key held the day only)
    from orchestration.lib.notify import source_change_notifications

    def changes(*said):
        return source_change_notifications(
            pd.DataFrame(
                {"table_name": "orders", "date": pd.to_datetime("2026-10-01"), "kind": "file", "change": list(said)}
            )
        )

    first, cursor = select_new(changes("orders_2026-10-01_corrected.csv"), NotifyCursor(), date(2026, 10, 3))
    assert len(first) == 1 and first[0].kind == "source" and "orders 2026-10-01" in first[0].message
    again, cursor = select_new(changes("orders_2026-10-01_corrected.csv"), cursor, date(2026, 10, 4))
    assert again == []
    second, _ = select_new(changes("orders_2026-10-01_corrected_v2.csv"), cursor, date(2026, 10, 5))
    assert [n.subject for n in second] == ["orders (orders_2026-10-01_corrected_v2.csv)"]


def test_a_version_change_is_one_notification_however_many_of_its_days_breach():
    # a trial's one vendor change was 13 notifications over 7 mornings (flag rate and score PSI, each day)
    conn = duckdb.connect()
    ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)

    def add(day: int, version: str, metric: str, subject: str) -> None:
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES (DATE '2026-10-01' + INTERVAL (?) DAY, 'fraud', ?, ?, ?, 0.24, 0.035, 'as said')",
            [day - 1, version, metric, subject],
        )

    sent, cursor = [], NotifyCursor()
    for day in range(1, 15):  # a daily run each day, a 3-day horizon shorter than the change's 7 days
        if 3 <= day <= 9:  # v2's first 7 days breach on both subjects
            add(day, "v2", "version_change", "flag_rate")
            add(day, "v2", "version_change", "score")
        add(day, "v2", "psi", "score")  # a drift alert of a feature named like the subject: its own incident
        if day == 12:
            add(day, "v3", "version_change", "flag_rate")  # the next version's change is news too
        candidates, newest = read_candidates(conn, horizon_days=3)
        new, cursor = select_new(candidates, NotifyCursor.from_json(cursor.to_json()), newest, horizon_days=3)
        sent += new
    changes = [(n.date, n.subject, n.message.split(":")[0]) for n in sent if n.metric == "version_change"]
    assert changes == [
        ("2026-10-03", "flag_rate", "fraud (v2) on 2026-10-03"),
        ("2026-10-03", "score", "fraud (v2) on 2026-10-03"),
        ("2026-10-12", "flag_rate", "fraud (v3) on 2026-10-12"),
    ]
    assert [n.date for n in sent if n.metric == "psi"] == ["2026-10-01"]
    # read back later, the first day's notification says how long the change breached
    [said, *_] = alert_notifications(conn.execute("SELECT * FROM marts.alerts WHERE metric = 'version_change'").df())
    assert said.message.startswith("fraud (v2) on 2026-10-03 (and on its version's days through 2026-10-09): ")


def test_an_alert_that_goes_on_is_one_notification_until_a_day_of_predictions_passes_without_it():
    # a trial's creatinine went missing for weeks: one null_rate notification a day (and so for a PSI pool's 7 days)
    conn = duckdb.connect()
    ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
    # weekday model: predictions Monday-Friday only (2026-10-05 is a Monday)
    conn.execute(
        "CREATE TABLE marts.model_health_daily AS SELECT DATE '2026-10-05' + INTERVAL (i) DAY AS date, 'lender' "
        "AS model_id, CASE WHEN dayofweek(DATE '2026-10-05' + INTERVAL (i) DAY) IN (0, 6) THEN 0 ELSE 50 END AS "
        "predictions FROM range(28) t(i)"
    )
    # Mon 10-05 .. Mon 10-12 breaching (no predictions that weekend), Tue 10-13 judged clean, Wed 10-14 again
    breaching = {5: 0.30, 6: 0.35, 7: 0.90, 8: 0.40, 9: 0.31, 12: 0.33, 14: 0.50}
    sent, cursor = [], NotifyCursor()
    for day in range(5, 19):
        if day in breaching:
            conn.execute(
                "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
                "VALUES (DATE '2026-10-01' + INTERVAL (?) DAY, 'lender', 'v1', 'null_rate', 'creatinine', ?, 0.1, "
                "'as said')",
                [day - 1, breaching[day]],
            )
        candidates, newest = read_candidates(conn, horizon_days=3)
        new, cursor = select_new(candidates, NotifyCursor.from_json(cursor.to_json()), newest, horizon_days=3)
        sent += new
    assert [(n.date, n.value) for n in sent] == [("2026-10-05", 0.30), ("2026-10-14", 0.50)]
    # read back, the first incident says how long it lasted and its worst day
    first, second = alert_notifications(
        conn.execute("SELECT * FROM marts.alerts").df(), conn.execute(PREDICTION_DAYS_SQL).df()
    )
    assert first.until == "2026-10-12" and second.until is None
    assert first.message == (
        "lender (v1) on 2026-10-05 (alerting on 6 days through 2026-10-12, highest 0.9 on 2026-10-07): "
        "null_rate of creatinine = 0.3, rule as said"
    )
    # without the days a model made predictions, only calendar days in a row are one incident (the weekend splits)
    assert [(n.date, n.until) for n in alert_notifications(conn.execute("SELECT * FROM marts.alerts").df())] == [
        ("2026-10-05", "2026-10-09"),
        ("2026-10-12", None),
        ("2026-10-14", None),
    ]


def test_a_second_verdict_that_starts_failing_during_a_failure_is_notified_too():
    # a trial: equal opportunity failed beyond noise once late labels landed (TPR 7/13 vs 34/34) and nobody was told,
    # for disparate impact had been failing on the same model and attribute for months
    def with_eo(day: int, eo_passes: bool | None) -> dict:
        row = verdict(day, False, 0.42)
        difference = 0.46 if eo_passes is False else 0.05
        return (
            row
            | {"passes_equal_opportunity": eo_passes, "equal_opportunity_difference": difference}
            | {"equal_opportunity_max_difference": 0.1}
        )

    conn = verdicts_warehouse([with_eo(1, None), with_eo(2, True)])
    first, cursor = notify_run(conn, NotifyCursor())
    assert [(n.date, n.value) for n in first] == [("2026-10-01", 0.42)]  # disparate impact's onset, as before
    add_verdicts(conn, [with_eo(3, False), with_eo(4, False)])
    second, cursor = notify_run(conn, cursor)
    [n] = second
    assert (n.date, n.value, n.threshold, n.until) == ("2026-10-03", 0.46, 0.1, "2026-10-04")
    assert n.message.startswith(
        "equal opportunity difference of mortgage / afam fails too from the window 2026-09-20 .. 2026-10-03 "
        "(disparate impact ratio failing before it); that window's figures"
    )
    # going on is not news; passing and failing again is
    add_verdicts(conn, [with_eo(5, False)])
    assert notify_run(conn, cursor)[0] == []
    add_verdicts(conn, [with_eo(6, True), with_eo(7, False)])
    assert [n.date for n in notify_run(conn, cursor)[0]] == ["2026-10-07"]


def test_an_unset_horizon_reaches_a_long_label_coverage_lookback(tmp_path):
    # a trial: label_coverage after_days 30 made the lookback 30; the unset horizon (31) failed `--notify` after an
    # `ok` run, though the README widens it
    project = tmp_path / "impact_ledger.yml"
    project.write_text("models:\n  m:\n    alerts:\n      label_coverage: {below: 0.5, after_days: 30}\n")
    lookback = 30  # the coverage rule's after_days, as label_lookback_days
    assert load_notify_config(project, env={}).horizon_days == max(lookback + 2, 30 + 1)
    # set explicitly below it: still refused, naming the setting
    project.write_text(project.read_text() + "notify:\n  horizon_days: 31\n")
    with pytest.raises(ValueError, match="notify.horizon_days must be an integer >= 32"):
        load_notify_config(project, env={})


def test_an_incident_of_a_rule_breached_below_its_threshold_names_its_lowest_day():
    # a re-trial: a label-coverage incident said "highest 0.4286", its mildest day; the worst was 0.2222
    rows = [
        ("2026-03-17", "m", "v1", "label_coverage", "", 0.30, 0.5, "< 0.5"),
        ("2026-03-18", "m", "v1", "label_coverage", "", 0.2222, 0.5, "< 0.5"),
        ("2026-03-19", "m", "v1", "label_coverage", "", 0.4286, 0.5, "< 0.5"),
    ]
    [n] = alert_notifications(alerts_frame(rows))
    assert "lowest 0.2222 on 2026-03-18" in n.message and "highest" not in n.message
