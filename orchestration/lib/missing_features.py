"""Features whose values went missing on recent days where their version's reference days had them: a column
renamed or dropped upstream (no value at all), or a feed partly broken (mostly missing). Said by summary and the
daily report under drift not measured (their PSI reads the few values left, or none)."""

from datetime import date

VANISHED_ALPHA = 0.01  # how unlikely at the reference's missing share a vanished feature's empty rows must be
# a day's share of missing values from which a feature counts as mostly missing, and the reference's below which
# that is a change (a feature often empty from the start is not)
MOSTLY_MISSING, USUALLY_PRESENT = 0.9, 0.5
# the recent days: those after the newest drift day (up to ``upto``) less the days counted
RECENT = "date > coalesce(?::DATE, (SELECT max(date) FROM drift)) - ?::INTEGER AND date <= coalesce(?::DATE, date)"


def _rows(conn, sql: str, params: list) -> list[tuple]:
    """The rows of ``sql``; none without the drift mart (or an older one)."""
    import duckdb

    try:
        return conn.execute(sql, params).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return []


def vanished_features(conn, days: int, upto: date | None = None) -> list[tuple[str, str]]:
    """(model, line) of features with values in their version's reference and none on days of the last ``days`` (to
    ``upto``, else the newest drift day): a column renamed or dropped upstream (a trial's renamed feature passed
    every gate and no line said so). Only where so many empty rows are beyond chance (VANISHED_ALPHA) at the
    reference's share of missing values (smoothed by one each way: a reference without a missing value still allows
    one): a trial's one-row day whose one value was the data's only missing one was said for a month."""
    rows = _rows(
        conn,
        f"""
        WITH drift AS (SELECT * FROM marts.feature_drift_daily),
        reference AS (
            SELECT model_id, model_version, feature,
                (sum(null_rate * rows_total) + 1) / (sum(rows_total) + 2) AS missing_share
            FROM drift WHERE date BETWEEN reference_start_date AND reference_end_date GROUP BY ALL
        )
        SELECT model_id, model_version, feature, count(*), min(date), max(date)
        FROM drift JOIN reference USING (model_id, model_version, feature)
        WHERE null_rate = 1 AND {RECENT}
        GROUP BY ALL HAVING ln(any_value(missing_share)) * sum(rows_total) < ln(?)
        ORDER BY ALL
        """,
        [upto, days, upto, VANISHED_ALPHA],
    )
    return [
        (
            model,
            f"{model} {version} {feature}: no value on {n} day(s) ({first} .. {last}) though its reference has values: "
            "renamed or dropped upstream? (details: marts.feature_drift_daily.null_rate)",
        )
        for model, version, feature, n, first, last in rows
    ]


def mostly_missing_features(conn, days: int, upto: date | None = None) -> list[tuple[str, str]]:
    """(model, line) of features at least MOSTLY_MISSING empty (not wholly: vanished_features) on days of the last
    ``days`` whose reference days had them mostly present: a trial's feature at 98-100% missing for 21 days read
    only "no value on 7 day(s)", and its PSI on the few values left was not judged."""
    rows = _rows(
        conn,
        f"""
        WITH drift AS (SELECT * FROM marts.feature_drift_daily),
        reference AS (
            SELECT model_id, model_version, feature, median(null_rate) AS reference_null_rate FROM drift
            WHERE date BETWEEN reference_start_date AND reference_end_date GROUP BY ALL
        )
        SELECT model_id, model_version, feature, count(*), min(date), max(date), min(null_rate), max(null_rate),
            any_value(reference_null_rate)
        FROM drift JOIN reference USING (model_id, model_version, feature)
        WHERE {RECENT} AND null_rate >= ? AND null_rate < 1 AND reference_null_rate < ?
        GROUP BY ALL ORDER BY ALL
        """,
        [upto, days, upto, MOSTLY_MISSING, USUALLY_PRESENT],
    )
    return [
        (
            model,
            f"{model} {version} {feature}: mostly missing on {n} day(s) ({first} .. {last}: {low:.0%}-{high:.0%} "
            f"missing, against {reference:.0%} in its reference days): a feed partly broken upstream? (details: "
            "marts.feature_drift_daily.null_rate)",
        )
        for model, version, feature, n, first, last, low, high, reference in rows
    ]


def missing_feature_lines(conn, days: int) -> list[str]:
    """vanished_features' and mostly_missing_features' lines, every model's, to the newest drift day."""
    return [line for _, line in vanished_features(conn, days) + mostly_missing_features(conn, days)]
