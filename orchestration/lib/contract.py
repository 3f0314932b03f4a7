"""The raw data contract of DESIGN.md, as data.

Each table lists its required columns with DuckDB types, its key, the column
that places a row in a partition day (``None`` for dimension snapshots that are
reloaded whole), and row rules. A row rule is a SQL predicate that is true when
the row breaks the rule; such rows go to ``raw_quarantine.<table>`` with the
rule's reason. Rules may refer to other ``raw`` tables (referential rules).
A table with a key and a time column has unique keys across days: the loader
quarantines a key already loaded on an earlier day (an assignment's first day wins).

Real data sets are partial, so every table but ``users`` is optional: a source
without it loads it empty (a monitoring-only model has users, predictions and
labels; an A/B test without a model has users, experiments, variants,
assignments, sessions and orders), and its gate passes saying so.
"""

from __future__ import annotations

from dataclasses import dataclass


class ContractError(ValueError):
    """Input that cannot be loaded at all: names the file, table and column."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type the value must cast to
    required: bool = True  # must be present as a column (values may still be null)


@dataclass(frozen=True)
class RowRule:
    reason: str
    violated_when: str  # SQL over the typed row; NULL counts as "not violated"
    column: str = ""  # a value-set rule's column and its values (init names the other values a table holds)
    allowed: tuple[str, ...] = ()
    lower_bound: float | None = None  # a range rule's: rows below it are quarantined (a sum of them is never below)


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    time_column: str | None = None  # None: a dimension snapshot, reloaded whole
    rules: tuple[RowRule, ...] = ()
    extra_column_prefix: str | None = None  # e.g. feature_* columns of predictions
    optional: bool = True  # the source may not have this table at all (loaded empty); only users is required
    key_order: str | None = None  # which duplicate wins: first by this order

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _not_null(*cols: str) -> tuple[RowRule, ...]:
    return tuple(RowRule(f"null {c}", f"{c} IS NULL") for c in cols)


def _in_set(col: str, values: tuple[str, ...]) -> RowRule:
    allowed = ", ".join(f"'{v}'" for v in values)
    return RowRule(f"{col} not in ({', '.join(values)})", f"{col} NOT IN ({allowed})", col, values)


def _between(col: str, low: float, high: float | None = None) -> RowRule:
    # NOT (x >= low AND x <= high) is also true for NaN, which DuckDB orders above everything.
    upper = f" AND {col} <= {high}" if high is not None else f" AND NOT isnan({col})"
    # a bound on one side said as such (a trial read "revenue outside >= 0")
    name = f"{col} outside [{low}, {high}]" if high is not None else f"{col} below {low} (or NaN)"
    return RowRule(name, f"NOT ({col} >= {low}{upper})", col, lower_bound=low)


TS, DATE, STR, DBL, INT = "TIMESTAMP", "DATE", "VARCHAR", "DOUBLE", "BIGINT"

# scores and thresholds are probabilities: init and the quality gate say a unit slip (percentages) in these words
PROBABILITY_HINT = "scores and thresholds are probabilities in [0, 1] (percentages? divide both by 100)"

UNKNOWN_VARIANT = "unknown variant for experiment"
# A keyed row equal to an earlier row of its day in every column (a file delivered twice, an export repeating rows):
# its reason is this alone, whatever else it breaks (the earlier row says that). Quarantined, so nothing is lost,
# but left out of what the quality gates read: the copy says nothing new, and its duplicated key held the day back.
COPY_REASON = "copy of an earlier row of the day (every column the same)"
# a row delivered again on a later day (an overlapping export): the same in every column as its key's loaded row
RESENT_REASON = "copy of a row loaded on an earlier day (every column the same)"
SOURCE_COLUMNS = ("_source_file", "_source_row")  # where the loader read a row, not what the row says
DECLARED_VARIANTS_SQL = "SELECT experiment_id, variant FROM raw.experiment_variants"
# why an experiment's variant rows were not loaded: its assignments are unknown because of them, not of themselves
QUARANTINED_VARIANTS_SQL = (
    "SELECT DISTINCT experiment_id, _reason FROM raw_quarantine.experiment_variants ORDER BY experiment_id, _reason"
)
FIX_VARIANTS = "fix experiment_variants"


def _no_variants_hint(experiment: str, quarantined) -> str:
    """Why an experiment has no loaded variant: its experiment_variants rows were quarantined (and for what), or it
    has none; what to fix is experiment_variants (shares written 50 and 50 read as every assignment's fault)."""
    reasons = list(dict.fromkeys(str(r) for e, r in quarantined if str(e) == experiment))
    why = f"its experiment_variants rows were quarantined ({'; '.join(reasons)})" if reasons else "it has none"
    return f"experiment {experiment!r} has no loaded variants: {why}: {FIX_VARIANTS}"


def variant_hints(pairs, declared, quarantined=()) -> str:
    """ "'Treatment' of experiment 'e': did you mean 'treatment'?" per (experiment_id, variant) of ``pairs`` whose
    experiment declares a variant near it (``declared``: (experiment_id, variant) rows), '; '-joined, '' for none:
    init names the nearest variant of a case typo, and materialize's quarantine and gate said only 'unknown'. An
    experiment with no declared variant is said once, with why (``quarantined``: its (experiment_id, _reason) rows
    of raw_quarantine.experiment_variants)."""
    from orchestration.lib.project_config import nearest

    known: dict[str, list[str]] = {}
    for experiment, variant in declared:
        known.setdefault(str(experiment), []).append(str(variant))
    hints = []
    for experiment, variant in dict.fromkeys((str(e), str(v)) for e, v in pairs):
        if experiment not in known:
            hints.append(_no_variants_hint(experiment, quarantined))
            known[experiment] = []  # said once per experiment
            continue
        arms = known[experiment]
        near = next((a for a in arms if a.lower() == variant.lower()), None) or nearest(variant, arms)
        if near is not None:
            hints.append(f"{variant!r} of experiment {experiment!r}: did you mean {near!r}?")
    return "; ".join(hints)


def non_negative_columns(table: str) -> set[str]:
    """The columns of ``table`` whose loaded values are never negative (a range rule from 0 or above quarantines
    the rest): what the relative lift of a metric summing them can rely on."""
    contract = CONTRACTS.get(table)
    rules = contract.rules if contract else ()
    return {r.column for r in rules if r.lower_bound is not None and r.lower_bound >= 0}


CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in (
        TableContract(
            "users",
            # segment and the demographic columns are optional (missing -> null, 'unknown' in staging); which
            # users columns are protected attributes is the project file's protected_attributes
            (
                Column("user_id", STR),
                Column("signup_at", TS),
                Column("country", STR, required=False),
                Column("segment", STR, required=False),
                Column("gender", STR, required=False),
                Column("age_band", STR, required=False),
            ),
            key=("user_id",),
            rules=_not_null("user_id", "signup_at"),
            key_order="signup_at",
            optional=False,
        ),
        TableContract(
            "experiments",
            (
                Column("experiment_id", STR),
                Column("model_id", STR),
                Column("control_variant", STR),
                Column("start_date", DATE),
                Column("end_date", DATE),
            ),
            key=("experiment_id",),
            rules=_not_null("experiment_id", "model_id", "control_variant", "start_date")
            + (RowRule("end_date before start_date", "end_date < start_date"),),
        ),
        TableContract(
            "experiment_variants",
            (Column("experiment_id", STR), Column("variant", STR), Column("expected_share", DBL)),
            key=("experiment_id", "variant"),
            rules=_not_null("experiment_id", "variant", "expected_share") + (_between("expected_share", 0, 1),),
        ),
        TableContract(
            "assignments",
            (Column("experiment_id", STR), Column("user_id", STR), Column("variant", STR), Column("assigned_at", TS)),
            key=("experiment_id", "user_id"),
            time_column="assigned_at",
            key_order="assigned_at",
            rules=_not_null("experiment_id", "user_id", "variant")
            + (
                RowRule(
                    UNKNOWN_VARIANT,
                    "NOT EXISTS (SELECT 1 FROM raw.experiment_variants v "
                    "WHERE v.experiment_id = t.experiment_id AND v.variant = t.variant)",
                ),
            ),
        ),
        TableContract(
            "predictions",
            (
                Column("prediction_id", STR),
                Column("model_id", STR),
                Column("model_version", STR),
                Column("user_id", STR),
                # no logged threshold: stg_predictions uses the model's configured one, else 0.5
                Column("predicted_at", TS),
                Column("score", DBL),
                Column("threshold", DBL, required=False),
            ),
            key=("prediction_id",),
            time_column="predicted_at",
            extra_column_prefix="feature_",
            rules=_not_null("prediction_id", "model_id", "model_version", "user_id", "score")
            + (_between("score", 0, 1), _between("threshold", 0, 1)),
        ),
        TableContract(
            "labels",
            (Column("prediction_id", STR), Column("label", INT), Column("labeled_at", TS), Column("label_source", STR)),
            time_column="labeled_at",
            rules=_not_null("prediction_id", "label", "label_source")
            + (
                RowRule("label not in (0, 1)", "label NOT IN (0, 1)", "label", ("0", "1")),
                _in_set("label_source", ("implicit", "human_review")),
            ),
        ),
        TableContract(
            "feedback",
            (
                Column("feedback_id", STR),
                Column("prediction_id", STR),
                Column("user_id", STR),
                Column("created_at", TS),
                Column("value", STR),
            ),
            key=("feedback_id",),
            time_column="created_at",
            rules=_not_null("feedback_id", "prediction_id", "value") + (_in_set("value", ("up", "down")),),
        ),
        TableContract(
            "sessions",
            (Column("session_id", STR), Column("user_id", STR), Column("started_at", TS)),
            key=("session_id",),
            time_column="started_at",
            rules=_not_null("session_id", "user_id"),
        ),
        TableContract(
            "orders",
            (
                Column("order_id", STR),
                Column("user_id", STR),
                Column("session_id", STR, required=False),
                Column("ordered_at", TS),
                Column("revenue", DBL),
                Column("status", STR),
            ),
            key=("order_id",),
            time_column="ordered_at",
            rules=_not_null("order_id", "user_id", "revenue", "status")
            + (_between("revenue", 0), _in_set("status", ("completed", "cancelled", "refunded"))),
        ),
        TableContract(
            "model_costs",
            (Column("date", DATE), Column("model_id", STR), Column("serving_cost", DBL), Column("review_cost", DBL)),
            key=("date", "model_id"),
            time_column="date",
            rules=_not_null("model_id", "serving_cost", "review_cost")
            + (_between("serving_cost", 0), _between("review_cost", 0)),
        ),
    )
}

# Load order: referential rules read tables loaded before them.
TABLE_ORDER = tuple(CONTRACTS)
DIMENSION_TABLES = tuple(name for name, c in CONTRACTS.items() if c.time_column is None)
