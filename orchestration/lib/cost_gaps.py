"""Where a model's net value misses a cost: days of its experiment without a model_costs row, and costs landed after
its newest net value (said by summary and the report alike)."""

from orchestration.lib.report_data import existing_tables

DAYS_NAMED = 5  # the days without a cost row named in a note
# the model scored on the net value's day ({scored} below; false where the health mart is not built)
SCORED_SQL = (
    "EXISTS (SELECT 1 FROM marts.model_health_daily h "
    "WHERE h.model_id = d.model_id AND h.date = d.as_of_date AND h.predictions > 0)"
)

# per model whose net value has costs: the days of its experiment without a model_costs row while it ran ({ran}: the
# days it scored, else up to its last cost row): a row of 0 is a cost, and the days of outcomes after the model
# stopped have none to miss (two trials' notes counted both as missing rows)
COST_GAPS_SQL = """
WITH days AS (
    SELECT model_id, as_of_date, sum(model_cost) AS cost FROM attribution.model_impact
    WHERE analysis_window = 'day' AND as_of_date <= coalesce(?::DATE, as_of_date) GROUP BY ALL
),
costs AS (SELECT model_id, date, max(date) OVER (PARTITION BY model_id) AS last_cost FROM staging.stg_model_costs),
missing AS (
    SELECT d.model_id, d.as_of_date FROM days d
    WHERE NOT EXISTS (SELECT 1 FROM costs c WHERE c.model_id = d.model_id AND c.date = d.as_of_date)
      AND {ran}
)
SELECT d.model_id, max(d.as_of_date) AS as_of, count(m.as_of_date) AS days_without,
    list(m.as_of_date ORDER BY m.as_of_date) FILTER (WHERE m.as_of_date IS NOT NULL) AS without
FROM days d LEFT JOIN missing m ON m.model_id = d.model_id AND m.as_of_date = d.as_of_date
GROUP BY d.model_id HAVING max(d.cost) > 0 ORDER BY d.model_id
"""
# without the staging views (the analytics snapshot; engine: spark): the days whose 'day' row counted no cost, up to
# the model's last day that counted one or scoring that day (a second trial's snapshot report counted the 28 days
# after its model stopped)
COST_ZERO_DAYS_SQL = """
WITH days AS (
    SELECT model_id, as_of_date, sum(model_cost) AS cost FROM attribution.model_impact
    WHERE analysis_window = 'day' AND as_of_date <= coalesce(?::DATE, as_of_date) GROUP BY ALL
),
judged AS (
    SELECT d.*, d.cost = 0 AND {ran} AS missing
    FROM days d
)
SELECT model_id, max(as_of_date) AS as_of, count(*) FILTER (WHERE missing) AS days_without,
    list(as_of_date ORDER BY as_of_date) FILTER (WHERE missing) AS without
FROM judged GROUP BY model_id HAVING max(cost) > 0 ORDER BY model_id
"""
# without the health mart: the days up to the model's last cost row (COST_GAPS_SQL), or its last day that counted a
# cost (COST_ZERO_DAYS_SQL, without the staging views)
LAST_ROW_SQL = "d.as_of_date <= (SELECT max(last_cost) FROM costs c WHERE c.model_id = d.model_id)"
LAST_COST_SQL = "d.as_of_date <= max(d.as_of_date) FILTER (WHERE d.cost > 0) OVER (PARTITION BY d.model_id)"
# the cost landed after a model's newest net value (results end on the last day with experiment data)
COSTS_AFTER_SQL = """
SELECT count(DISTINCT date), sum(total_cost) FROM staging.stg_model_costs WHERE model_id = ? AND date > ?
"""


def cost_gap_notes(conn, as_of=None, after: bool = True) -> list[str]:
    """Notes on net values up to ``as_of`` (None: every day) that miss a cost: days without a model_costs row (a late
    or lost cost file: one row a model a day is too few for the volume gate to judge), and (``after``) costs landed
    after the newest net value's day."""
    import duckdb

    # the days the model ran: those it scored (a weekly batch's six other days have no cost to miss: a trial was
    # told of 108 days without a cost row, every Monday's there); without the health mart, those up to its last cost
    scored = "marts.model_health_daily" in existing_tables(conn)
    try:
        gaps = conn.execute(COST_GAPS_SQL.format(ran=SCORED_SQL if scored else LAST_ROW_SQL), [as_of]).fetchall()
    except duckdb.Error:
        try:
            ran = SCORED_SQL if scored else LAST_COST_SQL
            gaps = conn.execute(COST_ZERO_DAYS_SQL.format(ran=ran), [as_of]).fetchall()
        except (duckdb.CatalogException, duckdb.BinderException):
            return []
    lines = []
    for model, newest, count, without in gaps:
        if count:
            # every day, up to a few (a second trial's report said nothing, its summary the first day only)
            days = ", ".join(map(str, without[:DAYS_NAMED])) + (" ..." if count > DAYS_NAMED else "")
            lines.append(
                f"{model}: no model_costs row on {count} day(s) of its experiment up to {newest} ({days}): its "
                "net value counts no cost on them (a late cost file? materialize names late files; run those days "
                "again once it lands: a bare `impact-ledger materialize` does when they come from a database)"
            )
        if not after:
            continue
        try:  # the staging view (or the snapshot's copy): not readable by the analyst on engine: spark
            landed, cost = conn.execute(COSTS_AFTER_SQL, [model, newest]).fetchone()
        except duckdb.Error:
            continue
        if landed:
            lines.append(
                f"{model}: {landed} day(s) of model_costs after {newest} ({cost:,.2f}) are in no net value yet: results "
                "end on the last day with experiment data"
            )
    return lines
