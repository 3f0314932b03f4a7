"""`impact-ledger init`: infer a first project file from a landing zone.

Reads every contract table found under the source (CSV or Parquet, one folder or file per table) with an
in-memory DuckDB (never the warehouse), aggregates in SQL (a 1M-row file costs a second or two) and writes a
commented YAML in the schema of ``project_config.py``: the partition start, the models found in predictions
(and which have an experiment), candidate protected attributes (low-cardinality users columns), observed
label delays (p99 -> label horizon), the labels' base rate (-> calibration_gap_max), daily volumes per table
(-> volume gate; a weekly cycle -> its own band; the volume_change alert reads a weekday's own level itself), thresholds seen, and what the user
should review (among it the groups too small for a fairness verdict). Dagster-free.
"""

from __future__ import annotations

import math
import re
import statistics
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from orchestration.lib.contract import CONTRACTS, PROBABILITY_HINT, ContractError, TableContract
from orchestration.lib.project_config import (
    Alerts,
    AlertRules,
    Bias,
    KPI_LOOKBACK_MAX,
    DriftReference,
    ModelSpec,
    Retraining,
    RowGate,
    VolumeGate,
    VolumeTable,
    load_config,
    parse_config,
)
from orchestration.lib.quality_gate import WEEKDAY_LEVEL_WEEKS, allowance
from orchestration.lib.raw_loader import (
    CODE_PATTERN,
    CSV_SOURCE,
    DATE_IN_NAME,
    EXPORT_DAYS_BEFORE,
    NUMBER_PATTERN,
    NUMBER_TYPES,
    _cast,
    _file_columns,
    _is_reader_error,
    _scan_columns,
    _scan_sql,
    check_formats,
    missing_column,
    check_types,
    reader_error,
    table_files,
    unread_note,
)

# a users column with at most this many distinct values is a candidate protected attribute
MAX_GROUPS = 20
# names that are protected attributes in most jurisdictions: proposed (uncommented) when low-cardinality
PROTECTED_TOKENS = {
    "gender",
    "sex",
    "race",
    "ethnicity",
    "ethnic",
    "age",
    "religion",
    "disability",
    "disabled",
    "nationality",
    "caste",
    # human rights codes name these too (Canada's, Ontario's, the UK's Equality Act)
    "colour",
    "color",
    "citizenship",
    "citizen",
    "marital",
    "pregnancy",
    "orientation",
    "racial",
    # short forms exports use: a European Social Survey's gndr, a census extract's maritl
    "gndr",
    "maritl",
}
# a word starting so is a protected name cut short or run together (_protected_word): every English word starting
# with ethn is ethnic's (ethn, ethnicgrp); race then eth is race/ethnicity (ACTG 320's raceth, raceethn), where
# words merely starting with race (racetrack, racer) are not
PROTECTED_PREFIXES = ("ethn", "raceth", "raceeth")
# ... and a protected name run together with a word for its coding (agegrp, sexcat, racecd), not any ending (agent)
GROUPING_SUFFIXES = ("grp", "group", "groups", "cat", "category", "band", "bands", "bin", "bucket", "cd", "code")
# words naming a protected group (not a characteristic): a column so named holding two values (0/1, yes/no,
# true/false) is an indicator of membership, proposed with its groups named by the values (leg_black, isFemale)
GROUP_TOKENS = {
    "black",
    "white",
    "hispanic",
    "hispan",  # NSW's and the CPS extracts' abbreviations
    "hisp",
    "latino",
    "latina",
    "asian",
    "female",
    "male",
    "woman",
    "women",
    "nonbinary",
    "transgender",
    "minority",
    "immigrant",
    "disabled",
    "citizen",
    "married",
    "pregnant",
    "muslim",
    "jewish",
    "christian",
    "gay",
    "lesbian",
}
# an indicator's two values, the member's first (compared lower-cased)
INDICATOR_VALUES = (("1", "0"), ("yes", "no"), ("true", "false"), ("y", "n"))
# a column of more groups than MAX_GROUPS is still a candidate (listed, not proposed) when its groups hold this
# many users on average: a customer subtype of 40 values, not an id-like city of one user each
MIN_USERS_PER_GROUP = 10
# columns that identify or time a row are never attributes
NOT_ATTRIBUTE = re.compile(r"(^id$|^user_id$|^id_|_at$|_date$|^date$|_ts$|timestamp)", re.IGNORECASE)
# an *_id column is an identifier when unique per user (dropped), else a grouping (store_id, region_id): a candidate
ID_NAME = re.compile(r"_id$", re.IGNORECASE)
HARMFUL_HINT = re.compile(r"(risk|fraud|default|churn|recidiv|credit|abuse|spam|toxic|anomal)", re.IGNORECASE)
SHOWN_VALUES = 6


class InitError(ValueError):
    """The landing zone cannot be inspected: one line naming the directory, file, table or column."""


@dataclass
class TableProfile:
    name: str
    files: list[Path]
    rows: int = 0
    first_day: date | None = None
    last_day: date | None = None
    days: int = 0  # calendar days from first to last
    daily_min: int = 0  # over those calendar days (a day without rows counts as 0)
    daily_median: float = 0.0
    daily_max: int = 0
    daily_counts: list[int] = field(default_factory=list)  # rows of each calendar day from first_day (0: none)
    batch: WeeklyBatch | None = None  # rows land on one or a few weekdays a week, the others empty
    missing_columns: list[str] = field(default_factory=list)  # required by the contract, absent in a file
    missing_notes: list[str] = field(default_factory=list)  # the loader's message of each, naming the file
    refused: str | None = None  # the loader's error on a value its contract type cannot hold: materialize stops
    source: str = ""  # a database table or a lake folder of the project file's sources (else the landing zone)
    naive_times: int = 0  # time-column values without a UTC offset (read in the project's time zone)
    naive_column: str = ""  # the column they are in: the time column, or users.signup_at
    # rows of files dated by name whose time falls on another day in the project's zone (the loader quarantines
    # them): their count, the dated files' rows, and one such time as written with its file's name
    off_day: tuple[int, int, str] | None = None
    # dated files every row of which falls 2-31 days before their name's date (raw_loader.EXPORT_DAYS_BEFORE): exports
    # named after the day they were written: (such files, dated files with rows, their rows, one and the days it holds)
    exported_after: tuple[int, int, int, str] | None = None
    text_numbers: dict[str, str] = field(default_factory=dict)  # feature column -> a value: numbers kept as text
    # feature column -> (its distinct whole numbers, the decile bins they fall in, some of them): codes binned
    numeric_codes: dict[str, tuple[int, int, list]] = field(default_factory=dict)
    # a value-set rule's column -> (rows whose value is outside the set, its most frequent such values)
    outside_sets: dict[str, tuple[int, list[tuple[str, int]]]] = field(default_factory=dict)

    @property
    def daily_rate(self) -> float:
        """Rows a calendar day, for counting what a window of days holds: the median over the series' 7-day
        windows of their rows, / 7. Whole weeks hold every weekday once, so a weekday-only feed's empty weekends
        count (its median day, 80 on a Monday-Friday model, made a 14-day window 1,120 where one held 806); the
        median week, not the mean day, keeps a ramp-up or a one-off spike from setting it. Under a week: the mean
        day."""
        counts = self.daily_counts
        if len(counts) < WEEK:
            return sum(counts) / len(counts) if counts else 0.0
        weeks = [sum(counts[i : i + WEEK]) for i in range(len(counts) - WEEK + 1)]
        return float(statistics.median(weeks)) / WEEK


WEEK = 7
WEEKEND = (5, 6)  # date.weekday() of Saturdays and Sundays
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _weekdays(days: tuple[int, ...], conjunction: str, plural: str = "s") -> str:
    """'Mondays and Tuesdays', 'Saturdays or Sundays', 'Sundays' ('Monday and Thursday' with plural ''): the
    weekdays (date.weekday()) named."""
    names = [f"{WEEKDAY_NAMES[d]}{plural}" for d in sorted(days)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


@dataclass
class WeeklyCycle:
    """Weekdays apart from the others, week after week, by more than a volume band passes: quiet ones (an order
    feed a day late, a B2B weekend, a shop closed midweek) or busy ones."""

    quiet: tuple[int, ...]  # date.weekday() of the days below the band most weeks
    busy: tuple[int, ...]  # ... above it
    quiet_median: float  # rows of the quiet weekdays' days (0 when none)
    busy_median: float
    other_median: float  # rows of the other weekdays' days
    deepest: float  # the judged day of the cycle furthest below its trailing median: rows / median - 1
    deepest_day: date

    @property
    def days(self) -> tuple[int, ...]:
        return tuple(sorted(self.quiet + self.busy))

    def said(self, rows: str) -> str:
        """The cycle in a few words: 'a median 40 rows on weekends, 100 on weekdays; the deepest weekend 60%
        below ...', 'a median 46 rows on Mondays and Tuesdays, 155 on the other days; the deepest day (a Monday) ...'."""
        weekend = self.days == WEEKEND
        levels = [
            (median, "weekends" if days == WEEKEND else _weekdays(days, "and"))
            for days, median in ((self.quiet, self.quiet_median), (self.busy, self.busy_median))
            if days
        ] + [(self.other_median, "weekdays" if weekend else "the other days")]
        deepest = "weekend" if weekend else f"day (a {WEEKDAY_NAMES[self.deepest_day.weekday()]})"
        return (
            f"a median {levels[0][0]:g} {rows} on {levels[0][1]}, "
            + ", ".join(f"{median:g} on {days}" for median, days in levels[1:])
            + f"; the deepest {deepest} {abs(self.deepest):.0%} below its trailing median"
        )


def _weekday_of(first_day: date, counts: list[int]) -> list[int]:
    """date.weekday() of each day of a calendar-day series from first_day."""
    return [(first_day + timedelta(days=i)).weekday() for i in range(len(counts))]


def _most_weeks(counts, weekday: list[int], outside) -> tuple[int, ...]:
    """The weekdays more than half of whose days are outside (an item of ``counts``, e.g. rows -> bool)."""
    return tuple(
        w for w in range(WEEK) if 2 * sum(outside(n) for n, d in zip(counts, weekday) if d == w) > weekday.count(w)
    )


MAX_BATCH_DAYS = 3  # a weekly batch source lands on at most this many weekdays (a weekday-only business is daily)
BATCH_SHARE = 0.95  # ... and those weekdays hold at least this share of its rows (a stray late row is no day)


@dataclass
class WeeklyBatch:
    """A weekly cycle whose other weekdays are empty: every row lands on one or a few weekdays a week (a model
    scoring once a week, an export taken every Monday). Its windows and volumes are counted in batches."""

    days: tuple[int, ...]  # date.weekday() of the batch days
    batches: int  # days with rows on them
    median: float  # rows of a batch (the median over those days)

    def rows_in(self, days: int) -> float:
        """About how many rows a window of ``days`` holds: its batches' (a week holds len(days) of them)."""
        return self.median * len(self.days) * days / WEEK

    def weeks_for(self, rows: float) -> int:
        """The whole weeks whose batches hold ``rows`` (at least one)."""
        return max(1, math.ceil(rows / (self.median * len(self.days)) - 1e-9))

    def said(self, rows: str) -> str:
        """'every Monday, 52 batches of a median 20 rows'."""
        return f"every {_weekdays(self.days, 'and', '')}, {self.batches} batches of a median {self.median:g} {rows}"


def _weekly_batch(first_day: date | None, counts: list[int]) -> WeeklyBatch | None:
    """The weekly batches of a calendar-day series: two weeks or more; rows on at most MAX_BATCH_DAYS weekdays in
    most weeks (the batch days), the other weekdays' days empty in most weeks, and BATCH_SHARE of the rows on the
    batch days. The weekly cycle's weekday machinery (_weekly_cycle finds none: the median day is empty)."""
    if first_day is None or len(counts) < 2 * WEEK:
        return None
    weekday = _weekday_of(first_day, counts)
    days = _most_weeks(counts, weekday, lambda n: n > 0)
    if not days or len(days) > MAX_BATCH_DAYS:
        return None
    if len(_most_weeks(counts, weekday, lambda n: n == 0)) != WEEK - len(days):
        return None
    on_batch = [n for n, d in zip(counts, weekday) if d in days and n]
    if sum(on_batch) < BATCH_SHARE * sum(counts):
        return None
    return WeeklyBatch(days, len(on_batch), float(statistics.median(on_batch)))


def _weekly_cycle(
    first_day: date | None, counts: list[int], band: float, trailing_days: int, min_median: float
) -> WeeklyCycle | None:
    """The weekly cycle of a calendar-day series that a +-band around its trailing median would flag: two weeks
    or more; the cycle's weekdays are those whose days lie outside +-band of their week's level (the median of the
    seven days around them) in most weeks (a weekday's one-off quiet day is no cycle; a quiet weekday need only lie
    below half the band: a dip the band catches in its deeper weeks only is the cycle still); and a judged day of
    them (a full trailing window whose median reaches min_median) below the band. Against the median of all days,
    weeks at levels far apart (a trial's 150 to 690 rows a weekday) put every weekday outside, and a month of
    quiet days after a pilot put its weekends inside. An empty day is no band's: the volume gate and the alert
    both pass a day empty a week before too."""
    if first_day is None or len(counts) < 2 * WEEK:
        return None
    if not statistics.median(counts):
        return None
    weekday = _weekday_of(first_day, counts)
    half = WEEK // 2
    week_level = [statistics.median(counts[max(0, i - half) : i + half + 1]) for i in range(len(counts))]
    days = range(len(counts))
    quiet = _most_weeks(days, weekday, lambda i: counts[i] < (1 - band / 2) * week_level[i])
    busy = _most_weeks(days, weekday, lambda i: counts[i] > (1 + band) * week_level[i])
    cycle = set(quiet + busy)
    if not cycle or len(cycle) == WEEK:
        return None
    changes = []
    for i in range(trailing_days, len(counts)):
        trailing = statistics.median(counts[i - trailing_days : i])
        # drops only: a day above the band only warns (volume_spike), so busy weekdays need no wider band
        if weekday[i] in cycle and counts[i] and trailing and trailing >= min_median and counts[i] < trailing:
            changes.append((counts[i] / trailing - 1, i))
    if not any(abs(change) > band for change, _ in changes):
        return None
    deepest, i = max(changes, key=lambda c: abs(c[0]))

    def median_on(days) -> float:
        return float(statistics.median(n for n, d in zip(counts, weekday) if d in days)) if days else 0.0

    return WeeklyCycle(
        quiet,
        busy,
        median_on(quiet),
        median_on(busy),
        median_on(set(range(WEEK)) - cycle),
        deepest,
        first_day + timedelta(days=i),
    )


@dataclass
class WeeklyBand:
    """A table judged by its weekdays for a weekly cycle (gates.volume.tables.<table>.weekly), and the days the
    default band held back."""

    cycle: WeeklyCycle
    days: tuple[int, ...]  # date.weekday() of the cycle's days (predictions: of every model's cycle)
    cycle_days: int  # of the days held back, those on the cycle's weekdays
    band_days: int  # every day the default band held back (the freshness rule's apart)
    model_id: str | None = None  # predictions are judged per model: the one with the deepest cycle day
    warns: bool = False  # the table's band only warns (assignments), holds nothing back


@dataclass
class ModelProfile:
    model_id: str
    predictions: int
    first_day: date
    last_day: date
    versions: int
    thresholds: list[tuple[float | None, int]]  # (threshold, rows), most frequent first
    positive_rate: float | None  # share of score >= threshold (0.5 where none)
    experiments: list[str] = field(default_factory=list)
    labelled: int = 0  # predictions with at least one label
    delay_median_days: float | None = None
    delay_p99_days: float | None = None
    delay_max_days: float | None = None
    # a label counts until the end of its prediction's day + the horizon: the most calendar days between the two
    delay_max_calendar_days: int | None = None
    delay_p90_days: float | None = None
    # the labels a horizon of the p99 rounded up drops (more calendar days after their prediction's day) when they
    # are all of one class: (how many, the class)
    late_one_class: tuple[int, int] | None = None
    # (how many, the latest's calendar days) of later label events (corrections) beyond the horizon
    late_corrections: tuple[int, int] | None = None
    # predictions made a label horizon or more before the last label, and how many of them are labelled
    mature: int = 0
    mature_labelled: int = 0
    daily_median: float = 0.0  # predictions a day over its calendar days
    daily_rate: float = 0.0  # predictions a calendar day, weekly (TableProfile.daily_rate): windows are counted by it
    daily_counts: list[int] = field(default_factory=list)  # predictions of each calendar day from first_day
    batch: WeeklyBatch | None = None  # scored once (or a few times) a week: its counts are a batch's
    version_daily_medians: dict[str, float] = field(default_factory=dict)  # the same per version, over its own days
    version_daily_rates: dict[str, float] = field(default_factory=dict)  # daily_rate per version, over its own days
    version_days: dict[str, list[tuple[date, int]]] = field(default_factory=dict)  # version -> (day, predictions)
    scores_outside: int = 0  # scores outside [0, 1]: the loader quarantines their rows
    label_positive_rate: float | None = None  # share of labelled predictions whose label is 1

    @property
    def labelled_share(self) -> float:
        """The share of predictions labelled: of those old enough for their labels to have landed, when any."""
        if self.mature:
            return self.mature_labelled / self.mature
        return self.labelled / self.predictions if self.predictions else 0.0

    @property
    def labelled_said(self) -> str:
        """labelled_share in words: of which predictions, and, where that is the mature ones, how many of all are
        labelled so far (a trial's labels, 30-45 days late, read '100% labelled' at 37% labelled so far)."""
        if not self.mature or self.mature >= self.predictions:  # the share is of all predictions
            return f"{self.labelled_share:.0%} labelled"
        return (
            f"labelled: {self.labelled_share:.0%} of the {self.mature} predictions old enough for their labels, "
            f"{self.labelled} of all {self.predictions} so far"
        )

    def made_in(self, days: int) -> float:
        """About how many predictions a window of ``days`` calendar days holds at the model's pace: its batches'
        for a weekly batch model (whose median day is empty), else its calendar rate's (both a week's / 7)."""
        return self.batch.rows_in(days) if self.batch else self.daily_rate * days

    def first_days_hold(self, days: int) -> dict[str, int]:
        """The predictions each version made in its first ``days`` calendar days: what its drift reference holds
        (the pace of made_in can be far off: a trial's early batches of 8-15 rows held 138 where 205 were said)."""
        return {v: sum(n for d, n in rows if (d - rows[0][0]).days < days) for v, rows in self.version_days.items()}

    def pool_fills(self, version: str, reference: int, pool: int, min_count: int) -> bool:
        """Whether any day of the version after its reference window has ``min_count`` predictions in its last
        ``pool`` days of that version after the reference (the PSI pool leaves the reference's days out)."""
        rows = self.version_days[version]
        after = [(d, n) for d, n in rows if (d - rows[0][0]).days >= reference]
        return any(sum(n for d, n in after if 0 <= (day - d).days < pool) >= min_count for day, _ in after)

    def predictions_in(self, days: int) -> float:
        """made_in, but no more than the model made (a short-lived model)."""
        return min(self.made_in(days), self.predictions)

    @property
    def per_unit(self) -> tuple[float, str]:
        """The model's usual predictions and their unit: (20, 'a batch') for a weekly batch, else a day's."""
        return (self.batch.median, "a batch") if self.batch else (self.daily_median, "a day")

    @property
    def rarer_outcome_rate(self) -> float | None:
        """min(p, 1 - p) of the labels: how often the rarer of the two outcomes happens."""
        p = self.label_positive_rate
        return None if p is None else min(p, 1 - p)

    @property
    def label_horizon_days(self) -> int:
        """p99 of the label delay, rounded up (the default when nothing is labelled yet); the latest label's calendar
        days when those later than the p99 are all of one class: a horizon dropping only one class biases precision
        and recall (a trial's deaths, the only labels after 340 days, up to 386)."""
        if self.delay_p99_days is None:
            return ModelSpec().label_horizon_days
        p99 = max(1, math.ceil(self.delay_p99_days - 1e-9))
        return max(p99, self.delay_max_calendar_days or 0) if self.late_one_class else p99

    def label_coverage_rule(self) -> dict:
        """What the label_coverage alert needs for these labels' timing, beyond its defaults: judged once 90% of
        labels have arrived (not after 7 days, when late labels alerted every day), and below half the share the
        mature predictions reach when fewer than half are ever labelled (e.g. only flagged ones). Every run
        recomputes after_days days before its own (so a day without any label still reaches the rule): labels
        slower than COVERAGE_WAIT_MAX days leave the rule off (below 0) rather than make every run recompute
        months."""
        default = AlertRules().label_coverage
        rule = {}
        if not self.labelled:  # no label yet: when they arrive is unknown (a trial's year-late labels alerted daily)
            return {"below": 0}
        wait = None if self.delay_p90_days is None else math.ceil(self.delay_p90_days - 1e-9)
        if wait is not None and wait > COVERAGE_WAIT_MAX:
            return {"below": 0}
        if wait is not None and wait > default.after_days:
            rule["after_days"] = wait
        if self.mature and self.mature_labelled / self.mature < default.below:
            rule["below"] = math.floor(self.mature_labelled / self.mature / 2 * 100) / 100
        return rule

    @property
    def threshold(self) -> float | None:
        """The one threshold the predictions carry; 0.5 when they carry none; None when they carry several."""
        seen = [t for t, _ in self.thresholds if t is not None]
        if not seen:
            return 0.5
        return seen[0] if len(seen) == 1 else None


@dataclass
class AttributeCandidate:
    column: str
    distinct: int
    nulls: int
    values: list[str]
    protected_name: bool
    scored_distinct: int | None = None  # distinct values among the users with predictions (None: not known)
    indicator: tuple[str, str] | None = None  # a protected group's 0/1 column: (member's value, the other's)

    @property
    def proposed(self) -> bool:
        """A protected name, a group column, and at least two groups among the users the models score."""
        scored = self.distinct if self.scored_distinct is None else self.scored_distinct
        return self.protected_name and 2 <= self.distinct <= MAX_GROUPS and scored >= 2


@dataclass
class Inference:
    source: Path
    tables: dict[str, TableProfile]
    models: list[ModelProfile]
    attributes: list[AttributeCandidate]  # low-cardinality users columns, and protected-named ones of any cardinality
    experiments: dict[str, str]  # experiment_id -> model_id
    users: int = 0
    sources: dict = field(default_factory=dict)  # the project file's sources, as written (copied into the new file)
    timezone: str = "UTC"  # the project file's (--config), in which times are read: copied into the new file
    unread: dict[str, str] = field(default_factory=dict)  # table -> its folder's files no format reads (unread_note)
    arms: dict[str, dict[str, int]] = field(default_factory=dict)  # experiment_id -> variant -> users assigned
    volume_holds: dict[str, list[date]] = field(default_factory=dict)  # table -> days its volume gate holds back
    stale_holds: dict[str, list[date]] = field(default_factory=dict)  # of those, the days without rows
    stale_warnings: dict[str, list[date]] = field(default_factory=dict)  # table -> empty days its gate warns of
    band_warnings: dict[str, list[date]] = field(default_factory=dict)  # table -> days its band only warns of
    weekly_bands: dict[str, WeeklyBand] = field(default_factory=dict)  # table -> its band written for a weekly cycle
    # table -> (rows whose user_id is not a users row, rows, rows that match once leading zeros are dropped)
    unknown_users: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # labels whose prediction_id is no predictions row: (such rows, label rows, the days the labels gate holds back)
    orphan_labels: tuple[int, int, list[date]] | None = None
    repeated_users: int = 0  # user_ids with more than one users row (the loader keeps the earliest signup)
    variant_problems: list[str] = field(default_factory=list)  # what the experiments' gates will hold back
    # experiment_id -> (its model, control-arm users that model scored after their assignment, control-arm users)
    exposed_controls: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    # model -> judged attribute (its users columns: a proposed one, or the intersection suggested) -> group ->
    # labelled predictions over the landing zone
    group_labelled: dict[str, dict[tuple[str, ...], dict[str, int]]] = field(default_factory=dict)
    group_predictions: dict[str, dict[tuple[str, ...], dict[str, int]]] = field(default_factory=dict)
    # model_costs model_id that is no model of predictions or experiments -> (its rows, the nearest model or '')
    cost_strangers: dict[str, tuple[int, str]] = field(default_factory=dict)
    # completed orders of a session: (such orders, the most days after their session's day, those after day 1)
    order_lag: tuple[int, int, int] | None = None
    # proposed indicator columns that are one attribute's one-hot codes (_one_hot)
    one_hot: list[str] = field(default_factory=list)

    @property
    def kpi_lookback_days(self) -> int:
        """The days a run's KPIs must reach back for a daily run to count every conversion a backfill counts."""
        return min(max(self.order_lag[1], 1), KPI_LOOKBACK_MAX) if self.order_lag else 1

    @property
    def first_day(self) -> date | None:
        days = [t.first_day for t in self.tables.values() if t.first_day]
        return min(days) if days else None

    @property
    def last_day(self) -> date | None:
        days = [t.last_day for t in self.tables.values() if t.last_day]
        return max(days) if days else None

    @property
    def proposed_attributes(self) -> list[str]:
        return _proposed(self.attributes)


def _proposed(attributes: list[AttributeCandidate]) -> list[str]:
    return [a.column for a in attributes if a.proposed]


def _suggested_intersection(proposed: list[str], one_hot: list[str] = ()) -> list[str] | None:
    """The intersection init writes (commented out) for the user to judge too: the first two proposed, or, where
    they are one-hot codes of one attribute (``one_hot``: _one_hot's), all of those together."""
    if len(one_hot) >= 2 and set(proposed[:2]) <= set(one_hot):
        return list(one_hot)
    return proposed[:2] if len(proposed) >= 2 else None


def _one_hot(conn, attributes: list[AttributeCandidate]) -> list[str]:
    """The proposed indicator columns that never mark one user twice (no users row a member of two): one
    attribute's one-hot codes. A pair of them is no intersection: a trial's black_male, white_male and
    black_female (white women: none of them) got [black_female, black_male] suggested, whose '0|0' mixed white men
    and women; all of them together name each group ('0|0|0': none of them)."""
    family: list[AttributeCandidate] = []
    for a in (a for a in attributes if a.proposed and a.indicator):
        both = [f"{_group_text(a.column)} = ? AND {_group_text(b.column)} = ?" for b in family]
        values = [v for b in family for v in (a.indicator[0], b.indicator[0])]
        if (
            not both
            or not conn.execute(f"SELECT count(*) FROM t_users WHERE {' OR '.join(both)}", values).fetchone()[0]
        ):
            family.append(a)
    return [a.column for a in family] if len(family) >= 2 else []


# ------------------------------------------------------------------ reading


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _as_timestamp(col: str) -> str:
    # via VARCHAR -> TIMESTAMPTZ: CSV text, Parquet timestamps and dates alike, an offset moves the row to its UTC day
    return f"TRY_CAST(CAST({_q(col)} AS VARCHAR) AS TIMESTAMPTZ)"


def _columns(
    conn: duckdb.DuckDBPyConnection, contract: TableContract, files: list[Path]
) -> tuple[dict[Path, list[str]], list[str]]:
    """Each file's columns, and the loader's one line for each file that cannot be read (every one, not the
    first: a user fixing an export wants them all at once)."""
    columns: dict[Path, list[str]] = {}
    problems: list[str] = []
    encoding = load_config().csv.encoding_of(contract.name)
    for path in files:
        try:
            columns[path] = _file_columns(conn, path, contract.name, encoding)
        except ContractError as err:  # an empty, truncated or malformed file: the loader's one-line message
            problems.append(str(err))
        except duckdb.Error as err:
            problems.append(f"{path}: cannot read table '{contract.name}': {_first_line(err)}")
    return columns, problems


def _unreadable(problems: list[str]) -> InitError:
    if len(problems) == 1:
        return InitError(problems[0])
    # one line still (the CLI prints one), numbered: each message has its own ';'
    return InitError(
        f"{len(problems)} problems reading the tables' files: "
        + " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
    )


def _lacking(table: str, columns: dict[Path, list[str]], column: str) -> str | None:
    """The loader's message for a column that some of a table's files lack, said of the first such file (and
    how many more) with that file's own columns, so its near-match hint is the one materialize gives; None when
    every file has it."""
    lacking = [path for path, cols in columns.items() if column not in cols]
    if not lacking:
        return None
    more = f" (and {len(lacking) - 1} more file(s) without it)" if len(lacking) > 1 else ""
    return missing_column(f"{lacking[0]}{more}", CONTRACTS[table], column, columns[lacking[0]])


def _refusal(conn: duckdb.DuckDBPyConnection, contract: TableContract, files: list[Path]) -> str | None:
    """The loader's error on a value of the files that its contract type cannot hold (materialize stops at
    the file), checked as the loader checks it; None when every value casts."""
    try:
        scan = _scan_sql(files, contract.name, load_config().csv.encoding_of(contract.name), mixed=True)
        check_types(conn, contract, scan, _scan_columns(conn, scan))
    except ContractError as err:
        return str(err)
    except duckdb.Error:  # a file DuckDB cannot read at all: reading it for the profile says why, in one line
        return None
    return None


def _refusal_in_database(refused: str, label: str) -> str:
    """_refusal's error on a database table's extracted day files (gone when init ends), naming the table and
    how many days hold such values instead."""
    files, rest = refused.split(": table '", 1)
    more = re.search(r"\(and (\d+) more file\(s\)\)$", files)
    days = int(more.group(1)) + 1 if more else 1
    return f"{label} ({days} day(s) of rows): table '{rest}"


def _need(table: str, columns: dict[Path, list[str]], *cols: str) -> None:
    for col in cols:
        if message := _lacking(table, columns, col):
            raise InitError(message)


def _stage(conn: duckdb.DuckDBPyConnection, name: str, files: list[Path], select: str) -> None:
    """Temp table ``name`` (t_<table>) as ``select`` over the table's files, read as the loader reads them."""
    table = name.removeprefix("t_")
    encoding = load_config().csv.encoding_of(table)
    try:
        scan = _scan_sql(files, table, encoding, mixed=True)
        conn.execute(f"CREATE TEMP TABLE {name} AS SELECT {select} FROM {scan}")
    except ContractError as err:
        raise InitError(str(err)) from None
    except duckdb.Error as err:
        if _is_reader_error(err):  # the loader's one line: file, table, line and cause
            raise InitError(str(reader_error(err, table, files, encoding))) from None
        raise InitError(
            f"{files[0].parent if len(files) > 1 else files[0]}: cannot read table '{table}': {_first_line(err)}"
        ) from None


def _daily(conn: duckdb.DuckDBPyConnection, table: str, column: str) -> list[tuple[date, int]]:
    return conn.execute(
        f"SELECT CAST({column} AS DATE) AS d, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY d ORDER BY d"
    ).fetchall()


VOLUME_DAYS_SHOWN = 5  # held-back days a review line lists
# the longest label-coverage wait init writes: every run recomputes that many days before its own (and
# notify.horizon_days, 31 by default, must exceed it by 2)
COVERAGE_WAIT_MAX = 14


def _volume(profile: TableProfile, per_day: list[tuple[date, int]]) -> None:
    if not per_day:
        return
    counts = dict(per_day)
    profile.first_day, profile.last_day = per_day[0][0], per_day[-1][0]
    profile.days = (profile.last_day - profile.first_day).days + 1
    # calendar days: a day without rows is a day of 0, as the volume gate sees it
    series = [counts.get(date.fromordinal(profile.first_day.toordinal() + i), 0) for i in range(profile.days)]
    profile.daily_counts = series
    profile.daily_min, profile.daily_max = min(series), max(series)
    profile.daily_median = float(statistics.median(series))
    profile.batch = _weekly_batch(profile.first_day, series)


def infer(source: Path) -> Inference:
    """Profile the landing zone ``source``; raises InitError (one line) on anything it cannot read."""
    source = Path(source)
    if not source.exists():
        raise InitError(f"source directory '{source}' does not exist")
    if not source.is_dir():
        raise InitError(f"source '{source}' is not a directory (expected a folder with one folder or file per table)")
    # the project file's sources (--config): a lake folder's files are read like the landing zone's; a database
    # table is inspected with SQL (columns, days, rows a day), then extracted as materialize extracts it into a
    # scratch folder and profiled like files (models, thresholds, label delays, attributes, volume holds)
    from orchestration.lib.db_sources import source_of
    from orchestration.lib.project_config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as err:
        raise InitError(str(err)) from None
    where = {name: source_of(name, config) for name in CONTRACTS}
    roots = {
        name: source if where[name].kind == "landing" else where[name].root
        for name in CONTRACTS
        if where[name].kind != "database"
    }
    found = {name: table_files(root, CONTRACTS[name]) for name, root in roots.items()}
    found = {name: files for name, files in found.items() if files}
    unread = {name: note for name, root in roots.items() if (note := unread_note(root, CONTRACTS[name]))}
    databases = [name for name in CONTRACTS if where[name].kind == "database"]
    if not found and not databases:
        raise InitError(
            f"no contract tables under '{source}': expected <table>/*.parquet|csv|csv.gz or "
            f"<table>.parquet|csv|csv.gz for tables {', '.join(CONTRACTS)}" + "".join(f"; {note}" for note in unread)
        )
    with tempfile.TemporaryDirectory(prefix="impact_ledger_init_") as scratch:
        extracted, inspected = _extract_databases(databases, config, where, Path(scratch))
        conn = duckdb.connect()  # in memory: init never touches the warehouse
        try:
            conn.execute(f"SET TimeZone = '{config.timezone}'")  # the loader's zone (--config's timezone)
            inference = _infer(
                conn, source, {**found, **extracted}, {**roots, **dict.fromkeys(extracted, Path(scratch))}
            )
        finally:
            conn.close()
    for name in found:
        if where[name].kind == "lake":
            inference.tables[name].source = where[name].label
    for name in extracted:  # its scratch files are gone: the table is named by its source
        table = inference.tables[name]
        table.files, table.source = [], where[name].label
        if table.refused:
            table.refused = _refusal_in_database(table.refused, where[name].label)
    inference.tables.update(inspected)  # a database table not extracted keeps its SQL profile
    inference.sources = {t: spec.model_dump(exclude_none=True) for t, spec in config.sources.items()}
    inference.timezone = config.timezone
    inference.unread = unread
    return inference


def _extract_databases(databases: list[str], config, where: dict, scratch: Path):
    """Each database table's rows extracted into ``scratch`` as materialize extracts them (its days, or a snapshot
    whole): table -> files, to be profiled like the landing zone's. A table lacking a required column, or
    without rows, is not extracted: table -> its SQL profile."""
    from orchestration.lib.db_sources import extract_days
    from orchestration.lib.engine import days_between

    extracted: dict[str, list[Path]] = {}
    inspected: dict[str, TableProfile] = {}
    for name in databases:
        spec, label = config.sources[name].database, where[name].label
        profile = _inspect_database(name, spec, label)
        dated = CONTRACTS[name].time_column is not None
        if profile.missing_columns or not profile.rows or (dated and profile.first_day is None):
            inspected[name] = profile
            continue
        days = days_between(profile.first_day, profile.last_day) if dated else []
        try:
            extract_days(name, spec, days, scratch, label)
        except ContractError as err:  # unreachable, refused: one line, password masked
            raise InitError(str(err)) from None
        extracted[name] = table_files(scratch, CONTRACTS[name])
        if not extracted[name]:
            inspected[name] = profile
            del extracted[name]
    return extracted, inspected


def _inspect_database(table: str, spec, label: str) -> TableProfile:
    from orchestration.lib.db_sources import inspect_database

    try:
        seen = inspect_database(spec, table)
    except ContractError as err:  # unreachable, refused, no such table: one line, password masked
        raise InitError(str(err)) from None
    profile = TableProfile(table, [], rows=seen["rows"], missing_columns=seen["missing"], source=label)
    if seen.get("rows_per_day"):
        _volume(profile, sorted(seen["rows_per_day"].items()))
    return profile


def _infer(
    conn: duckdb.DuckDBPyConnection, source: Path, found: dict[str, list[Path]], roots: dict[str, Path] | None = None
) -> Inference:
    roots = roots or {}  # a table's folder's parent where not the landing zone (a lake folder, a database's scratch)
    tables: dict[str, TableProfile] = {}
    columns: dict[str, dict[Path, list[str]]] = {}
    problems: list[str] = []
    for name, files in found.items():  # every table's headers first: all unreadable files said together
        try:
            check_formats(source, CONTRACTS[name], files)
        except ContractError as err:  # its files' headers are read still: one may be empty too
            problems.append(str(err))
        columns[name], unread = _columns(conn, CONTRACTS[name], files)
        problems += unread
    if problems:
        raise _unreadable(problems)
    # the columns every file of a table has: what a scan over all of them can read
    present = {name: set.intersection(*map(set, cols.values())) for name, cols in columns.items()}
    for name, files in found.items():
        contract = CONTRACTS[name]
        required = [c.name for c in contract.columns if c.required]
        notes = [note for c in required if (note := _lacking(name, columns[name], c))]
        profile = tables[name] = TableProfile(
            name,
            files,
            missing_columns=[c for c in required if c not in present[name]],
            missing_notes=notes,
            refused=_refusal(conn, contract, files),
        )
        tc = contract.time_column
        if tc is None:
            continue
        _need(name, columns[name], tc)
        keep = {
            "predictions": ["prediction_id", "model_id", "model_version", "score", "threshold", "user_id"],
            "labels": ["prediction_id", "label", "label_source"],
            "assignments": ["experiment_id", "variant", "user_id"],
            "sessions": ["user_id", "session_id"],
            "orders": ["order_id", "user_id", "session_id", "status"],
            "model_costs": ["model_id"],
        }.get(name, [])
        keep = [c for c in keep if c in present[name]]
        _stage(
            conn,
            f"t_{name}",
            files,
            ", ".join([f"{_as_timestamp(tc)} AS _ts"] + [f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}" for c in keep]),
        )
        profile.rows = conn.execute(f"SELECT count(*) FROM t_{name}").fetchone()[0]
        _volume(profile, _daily(conn, f"t_{name}", "_ts"))
        scan = _scan_sql(files, name, load_config().csv.encoding_of(name), mixed=True)
        profile.naive_times, profile.naive_column = _naive_times(conn, scan, tc), tc
        key = tuple(c for c in CONTRACTS[name].key if c in present[name])
        # dated as the loader dates them: under the table's own root (a lake folder's date=YYYY-MM-DD/ too)
        profile.off_day = _off_day_rows(conn, scan, tc, key, file_days=_file_days(files, roots.get(name, source)))
        profile.exported_after = _exported_after(conn, scan, tc, _file_days(files, roots.get(name, source)))
        if name == "predictions":
            features = sorted(c for c in present[name] if c.startswith("feature_"))
            profile.text_numbers = _text_numbers(conn, scan, features)
            profile.numeric_codes = _numeric_codes(conn, scan, features)
        profile.outside_sets = _outside_sets(conn, contract, scan, present[name])

    for name in ("users", "experiments", "experiment_variants"):
        if name in found:
            _stage(conn, f"t_{name}", found[name], "*")
            tables[name].rows = conn.execute(f"SELECT count(*) FROM t_{name}").fetchone()[0]
    if "users" in found and "signup_at" in present["users"]:  # cohorts and retention are cut by its day
        scan = _scan_sql(found["users"], "users", load_config().csv.encoding_of("users"), mixed=True)
        tables["users"].naive_times, tables["users"].naive_column = _naive_times(conn, scan, "signup_at"), "signup_at"

    experiments: dict[str, str] = {}
    if "experiments" in found:
        _need("experiments", columns["experiments"], "experiment_id", "model_id")
        experiments = dict(
            conn.execute(
                "SELECT DISTINCT CAST(experiment_id AS VARCHAR), CAST(model_id AS VARCHAR) "
                "FROM t_experiments WHERE experiment_id IS NOT NULL ORDER BY 1"
            ).fetchall()
        )
    models = _models(conn, found, present, columns, tables, experiments)
    cost_strangers = _cost_strangers(conn, present, {m.model_id for m in models} | set(experiments.values()))
    attributes, users = _attributes(conn, found, present) if "users" in found else ([], 0)
    arms: dict[str, dict[str, int]] = {}
    if "assignments" in found and {"experiment_id", "variant", "user_id"} <= present["assignments"]:
        for experiment_id, variant, units in conn.execute(
            "SELECT experiment_id, variant, count(DISTINCT user_id) FROM t_assignments "
            "WHERE experiment_id IS NOT NULL AND variant IS NOT NULL GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            arms.setdefault(experiment_id, {})[variant] = units
    dated = {n for n in found if CONTRACTS[n].time_column}
    holds, stale_warnings, band_warnings = _volume_holds(conn, dated, VolumeGate())
    # a band that only warns (assignments: they ramp up) gets the weekly cycle's band too: a trial's weekends warned
    weekly = _weekly_bands(tables, models, {**band_warnings, **holds}, _stale_days(holds, conn), set(band_warnings))
    if weekly:  # the days held back with the bands written
        holds, stale_warnings, band_warnings = _volume_holds(conn, dated, _volume_gate(weekly))
    order_lag = _order_lag(conn, found, present)
    unknown, repeated = _user_references(conn, found, present)
    orphans = _orphan_labels(conn, found, present)
    declared = _declared_variants(conn, found, present)
    proposed = _proposed(attributes)
    one_hot = _one_hot(conn, attributes)
    judged = [(c,) for c in proposed]
    if pair := _suggested_intersection(proposed, one_hot):
        judged.append(tuple(pair))
    return Inference(
        source,
        tables,
        models,
        attributes,
        experiments,
        users,
        arms=arms,
        volume_holds=holds,
        stale_holds=_stale_days(holds, conn),
        stale_warnings=stale_warnings,
        band_warnings=band_warnings,
        weekly_bands=weekly,
        unknown_users=unknown,
        orphan_labels=orphans,
        repeated_users=repeated,
        variant_problems=_variant_problems(arms, declared),
        exposed_controls=_exposed_controls(conn, found, present),
        group_labelled=_group_counts(conn, present, judged, labelled=True),
        group_predictions=_group_counts(conn, present, judged, labelled=False),
        cost_strangers=cost_strangers,
        order_lag=order_lag,
        one_hot=one_hot,
    )


def _cost_strangers(conn: duckdb.DuckDBPyConnection, present: dict, known: set[str]) -> dict[str, tuple[int, str]]:
    """model_costs ids no model has (staged as t_model_costs) -> (rows, the nearest model or ''): a misspelt id's
    cost counts toward no model, and its model's net value counts none. Nothing to compare with no model known."""
    from orchestration.lib.project_config import nearest

    if not known or "model_id" not in present.get("model_costs", ()):
        return {}
    rows = conn.execute(
        "SELECT model_id, count(*) FROM t_model_costs WHERE model_id IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return {m: (n, nearest(m, known) or "") for m, n in rows if m not in known}


def _exposed_controls(conn: duckdb.DuckDBPyConnection, found: dict, present: dict) -> dict[str, tuple[str, int, int]]:
    """Per experiment whose control arm its model scored: the model, the control-arm users with a prediction of it
    at or after their (first) assignment, and the control-arm users, as attribution counts them."""
    needed = {
        "experiments": {"experiment_id", "model_id", "control_variant"},
        "assignments": {"experiment_id", "variant", "user_id"},
        "predictions": {"model_id", "user_id"},
    }
    if any(table not in found or not cols <= present[table] for table, cols in needed.items()):
        return {}
    rows = conn.execute("""
        WITH first_assignment AS (
            SELECT experiment_id, user_id, variant, _ts FROM (
                SELECT *, row_number() OVER (PARTITION BY experiment_id, user_id ORDER BY _ts, variant) AS rank
                FROM t_assignments WHERE experiment_id IS NOT NULL AND user_id IS NOT NULL
            ) WHERE rank = 1
        ),
        controls AS (
            SELECT a.experiment_id, e.model_id, a.user_id, a._ts AS assigned_at
            FROM first_assignment a
            JOIN (SELECT DISTINCT CAST(experiment_id AS VARCHAR) AS experiment_id, CAST(model_id AS VARCHAR) AS model_id,
                         CAST(control_variant AS VARCHAR) AS control_variant FROM t_experiments) e
                ON e.experiment_id = a.experiment_id AND e.control_variant = a.variant
        )
        SELECT experiment_id, model_id,
            count(*) FILTER (WHERE EXISTS (SELECT 1 FROM t_predictions p
                WHERE p.model_id = c.model_id AND p.user_id = c.user_id AND p._ts >= c.assigned_at)) AS exposed,
            count(*) AS units
        FROM controls c GROUP BY ALL ORDER BY ALL""").fetchall()
    return {experiment_id: (model_id, exposed, units) for experiment_id, model_id, exposed, units in rows if exposed}


def _exposed_control_lines(exposed: dict[str, tuple[str, int, int]]) -> list[str]:
    """Review lines for experiments whose holdout their model scored: attribution will not trust their results."""
    return [
        f"experiments.{experiment_id}: {n:,} of {units:,} control-arm users ({n / units:.1%}) have predictions of "
        f"model {model_id} made after their assignment: a holdout must never be scored, so the lift is not "
        f"{model_id}'s value and its results are marked not trustworthy; name the model the experiment really "
        f"tests, or keep the holdout out of {model_id}'s scoring"
        for experiment_id, (model_id, n, units) in exposed.items()
    ]


def _declared_variants(conn: duckdb.DuckDBPyConnection, found: dict, present: dict) -> dict[str, dict[str, float]]:
    """experiment_id -> variant -> expected_share, as experiment_variants declares them (staged as t_experiment_variants)."""
    if "experiment_variants" not in found or not {"experiment_id", "variant", "expected_share"} <= present.get(
        "experiment_variants", set()
    ):
        return {}
    declared: dict[str, dict[str, float]] = {}
    for experiment_id, variant, share in conn.execute(
        "SELECT CAST(experiment_id AS VARCHAR), CAST(variant AS VARCHAR), TRY_CAST(expected_share AS DOUBLE) "
        "FROM t_experiment_variants WHERE experiment_id IS NOT NULL AND variant IS NOT NULL ORDER BY ALL"
    ).fetchall():
        declared.setdefault(experiment_id, {})[variant] = share
    return declared


def _share_total_bounds() -> tuple[float, float]:
    """The bounds the experiment_variants gate puts on an experiment's sum of expected shares (its suite file)."""
    from orchestration.lib.quality_gate import load_suite

    for expectation in load_suite("raw_experiment_variants")["expectations"]:
        kwargs = expectation["kwargs"]
        if kwargs.get("column") == "experiment_share_total":
            return kwargs["min_value"], kwargs["max_value"]
    raise ValueError("the raw_experiment_variants suite has no bounds on experiment_share_total")


def _variant_problems(arms: dict[str, dict[str, int]], declared: dict[str, dict[str, float]]) -> list[str]:
    """Review lines for what the gates of assignments and experiment_variants will fail on: variants assigned that
    experiment_variants does not declare (a case typo: 'Small' for 'small'), and shares that do not sum to 1."""
    out = []
    low, high = _share_total_bounds()
    for experiment_id, variants in declared.items():
        total = sum(share for share in variants.values() if share is not None)
        if not low <= total <= high:
            out.append(
                f"experiment_variants: the expected_share of experiment {experiment_id!r} sum to {total:g}, not 1 "
                f"({', '.join(f'{v} {s:g}' for v, s in variants.items() if s is not None)}): every day of it fails "
                "its gate until they do"
            )
    for experiment_id, assigned in arms.items():
        known = declared.get(str(experiment_id))
        if known is None:
            continue
        for variant, units in assigned.items():
            if str(variant) in known:
                continue
            near = [k for k in known if k.lower() == variant.lower()]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            out.append(
                f"assignments: variant {variant!r} of experiment {experiment_id!r} ({units} user(s)) is not one "
                f"experiment_variants declares ({', '.join(known)}){hint}: the days assigning it fail their gate"
            )
    return out


# a time written with its offset or as UTC ('Z'); epoch numbers are UTC too
OFFSET_OR_EPOCH = r"(.*(Z|[+-][0-9]{2}(:?[0-9]{2})?)|[0-9]+([.][0-9]+)?)"


def _naive_times(conn: duckdb.DuckDBPyConnection, scan: str, column: str) -> int:
    """How many values of the time column carry no UTC offset: the loader reads them in the project's time zone
    (UTC by default). Values that do not
    read as times at all (day/month text) are not counted: their own review line says so."""
    return conn.execute(
        f"SELECT count(*) FROM (SELECT trim(CAST({_q(column)} AS VARCHAR)) AS v FROM {scan}) "
        f"WHERE v IS NOT NULL AND v <> '' AND NOT regexp_full_match(v, '{OFFSET_OR_EPOCH}') "
        "AND TRY_CAST(v AS TIMESTAMP) IS NOT NULL"
    ).fetchone()[0]


def _order_lag(conn: duckdb.DuckDBPyConnection, found: dict, present: dict) -> tuple[int, int, int] | None:
    """Completed orders naming a session of the sessions table: how many, the most calendar days (of the project's
    zone) after their session's day, and how many came more than a day after it; None without both tables' ids."""
    if not ("orders" in found and "sessions" in found):
        return None
    if not ("session_id" in present["orders"] and "session_id" in present["sessions"]):
        return None
    completed = "o.status = 'completed'" if "status" in present["orders"] else "TRUE"
    # an order delivered twice (the loader quarantines the copy) is one order (a trial's 655 held one copy)
    order = "o.order_id" if "order_id" in present["orders"] else "o.rowid"
    orders, most, late = conn.execute(
        "WITH s AS (SELECT session_id, CAST(min(_ts) AS DATE) AS day FROM t_sessions GROUP BY 1), "
        f"lag AS (SELECT {order} AS id, CAST(o._ts AS DATE) - s.day AS days FROM t_orders o JOIN s USING (session_id) "
        f"WHERE {completed} AND o._ts IS NOT NULL AND s.day IS NOT NULL) "
        "SELECT count(DISTINCT id), coalesce(max(days), 0), count(DISTINCT id) FILTER (WHERE days > 1) FROM lag"
    ).fetchone()
    return (orders, int(most), late) if orders else None


def _file_days(files: list[Path], root: Path) -> dict[str, tuple[date, str]]:
    """Each file's day as the loader dates it (files_for_day: the first date in its path under the table's root, a
    lake's ``date=2025-09-01/part.parquet`` too), with the name to show it by: file -> (day, name); {} when some
    file carries no date (the loader then splits every file's rows by their time: no row is off its file's day)."""
    named = {p: DATE_IN_NAME.search(str(p.relative_to(root))) for p in files}
    if not files or not all(named.values()):
        return {}
    days = {}
    for p, found in named.items():
        try:
            day = date.fromisoformat(found.group(1))
        except ValueError:  # 2025-13-01: no day the loader reads
            continue
        days[str(p)] = (day, p.name if DATE_IN_NAME.search(p.name) else str(p.relative_to(root)))
    return days


def _off_day_rows(
    conn: duckdb.DuckDBPyConnection,
    scan: str,
    column: str,
    key: tuple[str, ...] = (),
    *,
    file_days: dict[str, tuple[date, str]],
) -> tuple[int, int, str] | None:
    """Rows of files dated by name (``file_days``: the loader's rule) whose time falls on another day in the
    session's zone, the loader's: (such rows, the dated files' rows, one such time and its file's name).
    A row whose ``key`` the file of its own day holds too is a re-send, which the loader quarantines as a copy
    whatever the zone: not counted (a trial's one re-sent row kept init asking for the zone already set)."""
    if not file_days:
        return None
    # joined by file name (names no export's column has: the scan's own are in scope)
    conn.execute("CREATE OR REPLACE TEMP TABLE _file_days (_file VARCHAR, _file_day DATE, _shown VARCHAR)")
    conn.executemany("INSERT INTO _file_days VALUES (?, ?, ?)", [(f, d, s) for f, (d, s) in file_days.items()])
    ids = f"[{', '.join(f'CAST({_q(c)} AS VARCHAR)' for c in key)}]" if key else "NULL"
    rows = (
        f"SELECT _file_day AS file_day, CAST(CAST({_q(column)} AS VARCHAR) AS VARCHAR) AS written, "
        f"CAST({_as_timestamp(column)} AS DATE) AS day, _shown AS shown, {ids} AS id FROM {scan} s "
        "JOIN _file_days ON _file = s.filename"
    )
    astray = "r.day <> r.file_day AND own.id IS NULL"
    off, dated, example, file = conn.execute(
        f"WITH r AS ({rows}) SELECT count(*) FILTER (WHERE {astray}), count(*), "
        f"min(r.written) FILTER (WHERE {astray}), arg_min(r.shown, r.written) FILTER (WHERE {astray}) FROM r "
        "LEFT JOIN (SELECT DISTINCT id, file_day FROM r WHERE id IS NOT NULL) own "
        "ON own.id = r.id AND own.file_day = r.day"
    ).fetchone()
    return (off, dated, f"{example} in {file}") if off else None


def _exported_after(
    conn: duckdb.DuckDBPyConnection, scan: str, column: str, file_days: dict[str, tuple[date, str]]
) -> tuple[int, int, int, str] | None:
    """Dated files (``file_days``, _file_days') every row of which falls shortly before the date in the name, none
    on it (the loader's rule, raw_loader.EXPORT_DAYS_BEFORE): a weekly export named after its Monday, not a time
    zone (a trial set the zone init asked for, and was asked again). (such files, dated files, their rows, one such
    file and its rows' first and last day), or None."""
    if not file_days:
        return None
    low, high = EXPORT_DAYS_BEFORE
    per_file = (
        f"SELECT filename, count(*) AS n, min(CAST({_as_timestamp(column)} AS DATE)) AS first, "
        f"max(CAST({_as_timestamp(column)} AS DATE)) AS last FROM {scan} GROUP BY filename"
    )
    days = conn.execute(per_file).fetchall()
    exported = [
        (name, n, first, last)
        for name, n, first, last in days
        if name in file_days
        and first is not None
        and last < file_days[name][0]
        and low <= (file_days[name][0] - first).days <= high
    ]
    if not exported:
        return None
    name, _, first, last = min(exported, key=lambda f: file_days[f[0]][0])
    held = f"{file_days[name][1]} holds {first}" + (f" .. {last}" if last != first else "")
    with_rows = sum(name in file_days for name, *_ in days)  # a header-only file is neither
    return len(exported), with_rows, sum(n for _, n, _, _ in exported), held


def _exported_after_line(t: TableProfile) -> str | None:
    """init's advice for a table whose dated files are mostly exports dated after the days they hold, in place of
    the time zone's (None when they hold under half of its rows off their file's day)."""
    if not (t.exported_after and t.off_day) or 2 * t.exported_after[2] < t.off_day[0]:
        return None
    files, dated, rows, held = t.exported_after
    return (
        f"{t.name}: every row of {files:,} of its {dated:,} dated files with rows ({rows:,} rows) falls "
        f"{EXPORT_DAYS_BEFORE[0]}-{EXPORT_DAYS_BEFORE[1]} days before the date in the file's name, none on it (e.g. "
        f"{held}): exports dated after the days they hold (a weekly export?), not a time zone; the loader reads "
        "a dated file as that day's rows and would quarantine them all: name the files without a YYYY-MM-DD date "
        f"(e.g. {t.name}_20250113.csv) so each row is placed by its {CONTRACTS[t.name].time_column}, and run "
        "materialize over the days each export holds (README: Exports dated after their days)"
    )


# numbers as exports write them for people: thousands separators (44,361.63) or decimal commas (0,25)
SEPARATED_NUMBER = r"[+-]?([0-9]{1,3}(,[0-9]{3})+([.][0-9]+)?|[0-9]+,[0-9]+)"


def _text_numbers(conn: duckdb.DuckDBPyConnection, scan: str, columns: list[str]) -> dict[str, str]:
    """Feature columns whose values are numbers written with separators (so the loader keeps them as text and
    drift reads them as categories): column -> one such value."""
    out = {}
    for column in columns:
        v = f"trim(CAST({_q(column)} AS VARCHAR))"
        total, separated, example = conn.execute(
            f"SELECT count(v), count(*) FILTER (WHERE regexp_full_match(v, '{SEPARATED_NUMBER}')), "
            f"any_value(v) FILTER (WHERE regexp_full_match(v, '{SEPARATED_NUMBER}')) "
            f"FROM (SELECT {v} AS v FROM {scan}) WHERE v <> ''"
        ).fetchone()
        if total and separated and separated >= 0.9 * total:
            out[column] = example
    return out


# at most this many distinct whole numbers in a numeric feature: maybe codes (a store, a region, a subtype)
MAX_CODES = 50
CODES_FILL = 0.8  # the share of the whole numbers between their least and greatest that codes hold


def _numeric_codes(conn: duckdb.DuckDBPyConnection, scan: str, columns: list[str]) -> dict[str, tuple[int, int, list]]:
    """Feature columns the loader stores as numbers (a numeric column, or CSV text of plain numbers) holding 3 to
    MAX_CODES distinct whole numbers from 1 up, filling most of their range (CODES_FILL), that drift's decile bins
    (cut as int_reference_profiles cuts, here over every row) put side by side in one bin: if they are codes, a shift
    between two of them shows no drift (a trial's customer subtype coded 1-41: PSI 0.05 at deciles where it was
    0.3-0.7 as categories). column -> (distinct values, bins they fall in, the first few values). One pass over the
    scan for every column's counts; the bins only for the few that look like codes."""
    types = dict(conn.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {scan})").fetchall())
    numeric = [c for c in columns if str(types.get(c, "")).removeprefix("U").startswith(NUMBER_TYPES)]
    text = [c for c in columns if str(types.get(c, "")) == "VARCHAR"]
    values = {c: f"CAST({_q(c)} AS DOUBLE)" for c in numeric}
    if text:  # CSV text becomes DOUBLE when every value is a plain number (the loader's rule)
        trimmed = {c: f"nullif(trim({_q(c)}), '')" for c in text}
        plain = conn.execute(
            "SELECT "
            + ", ".join(
                f"count({t}) > 0 AND bool_and(regexp_full_match({t}, '{NUMBER_PATTERN}') "
                f"AND NOT regexp_full_match({t}, '{CODE_PATTERN}') AND regexp_full_match(lower(filename), '{CSV_SOURCE}'))"
                for t in trimmed.values()
            )
            + f" FROM {scan}"
        ).fetchone()
        values |= {c: f"CAST({trimmed[c]} AS DOUBLE)" for c, ok in zip(text, plain) if ok}
    if not values:
        return {}
    names = list(values)
    stats = conn.execute(
        "SELECT "
        + ", ".join(f"count(DISTINCT {v}), bool_and({v} = round({v})), min({v}), max({v})" for v in values.values())
        + f" FROM {scan}"
    ).fetchone()
    out = {}
    for i, column in enumerate(names):
        distinct, whole, lowest, highest = stats[4 * i : 4 * i + 4]
        # counts (of orders, of prior events) start at 0; codes seldom do, and fill most of their range where a
        # count from 1 leaves gaps (a trial's lymph nodes: 30 values in 1..51); they start at 1 (a trial's ages
        # 50-101 and sample years 1995-2008 were proposed as codes)
        if not whole or not 3 <= distinct <= MAX_CODES or lowest != 1 or distinct < CODES_FILL * (highest - lowest + 1):
            continue
        value = values[column]
        # bin k holds edge_k < v <= edge_k+1: the bins the values fall in, as drift's reference profile cuts them
        bins, shown = conn.execute(
            f"WITH v AS (SELECT {value} AS v FROM {scan}), "
            "e AS (SELECT quantile_cont(v, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) AS edges FROM v) "
            "SELECT count(DISTINCT len(list_filter(edges, x -> v > x))), "
            "list(DISTINCT v ORDER BY v)[1:6] FROM v, e WHERE v IS NOT NULL"
        ).fetchone()
        if bins < distinct:
            out[column] = (distinct, bins, [int(x) for x in shown])
    return out


def _outside_sets(conn: duckdb.DuckDBPyConnection, contract: TableContract, scan: str, present: set[str]) -> dict:
    """Per value-set rule of the contract (label_source, status, ...): the rows whose value the loader would
    quarantine and the most frequent such values. A source's own names (e.g. 'billing_disconnect') lose every
    row of the table, which the user should map in the export before the first run."""
    found = {}
    for rule in contract.rules:
        if not rule.allowed or rule.column not in present:
            continue
        value = f"CAST({_q(rule.column)} AS VARCHAR)"
        outside = f"NOT list_contains(?::VARCHAR[], {value})"
        if rule.column == "label":  # a number: 1.0 or '1' is the label 1 (words stop the load: said elsewhere)
            outside = f"coalesce(TRY_CAST({_q(rule.column)} AS DOUBLE) NOT IN (0, 1), false)"
        rows = conn.execute(
            f"SELECT {value} AS v, count(*) AS n FROM {scan} WHERE {outside} GROUP BY 1 ORDER BY 2 DESC, 1",
            [list(rule.allowed)] if rule.column != "label" else [],
        ).fetchall()
        if rows:
            found[rule.column] = (sum(n for _, n in rows), rows[:SHOWN_VALUES])
    return found


def _volume_gate(weekly: dict[str, WeeklyBand]) -> VolumeGate:
    """gates.volume as init writes it: the defaults, and each table with a weekly cycle judged by its weekdays."""
    return VolumeGate(tables={table: VolumeTable(weekly=True) for table in weekly})


def _weekly_bands(
    tables: dict[str, TableProfile],
    models: list[ModelProfile],
    holds: dict[str, list[date]],
    stale: dict[str, list[date]],
    warns_only: set[str] = frozenset(),
) -> dict[str, WeeklyBand]:
    """The tables whose days the default volume band holds back (``warns_only``: of these tables, only warns of)
    are mostly the quiet (or busy) weekdays of a weekly cycle: each with the band that passes those days.
    Predictions are judged per model."""
    gate = VolumeGate()
    out = {}
    for table, held in holds.items():
        band_days = [d for d in held if d not in stale.get(table, [])]
        if not band_days:
            continue
        series = (
            {m.model_id: (m.first_day, m.daily_counts) for m in models}
            if table == "predictions"
            else {None: (tables[table].first_day, tables[table].daily_counts)}
        )
        cycles = {
            group: cycle
            for group, (first, counts) in series.items()
            if (cycle := _weekly_cycle(first, counts, gate.tolerance, gate.trailing_days, gate.min_count))
        }
        days = tuple(sorted({d for cycle in cycles.values() for d in cycle.days}))
        on_cycle = [d for d in band_days if d.weekday() in days]
        if not on_cycle or 2 * len(on_cycle) < len(band_days):
            continue
        group = max(cycles, key=lambda g: abs(cycles[g].deepest))
        out[table] = WeeklyBand(cycles[group], days, len(on_cycle), len(band_days), group, table in warns_only)
    return out


VOLUME_RULES = {"volume_deviation", "volume_spike", "fresh"}  # the volume gate's day expectations (gates.volume)


def _volume_rules(suite: dict, blocking: bool) -> set[str]:
    """The volume gate's day expectations of a suite that hold a day back (``blocking``) or only warn."""
    return {
        e["kwargs"].get("column")
        for e in suite.get("day_expectations", [])
        if ((e.get("meta") or {}).get("severity", "error") != "warning") == blocking
    } & VOLUME_RULES


def _fresh_blocks(table: str) -> bool:
    """Whether ``table``'s freshness rule holds a stale day back; else it warns (predictions, labels: a model
    that stops or a paused label feed has no rows to hold back)."""
    from orchestration.lib.quality_gate import load_suite, suite_names

    suites = [load_suite(name) for name in suite_names()]
    return any("fresh" in _volume_rules(s, True) for s in suites if s["table"] == table)


def _volume_holds(
    conn: duckdb.DuckDBPyConnection, dated: set[str], gate: VolumeGate
) -> tuple[dict[str, list[date]], dict[str, list[date]], dict[str, list[date]]]:
    """The days each table's volume gate would hold back with ``gate`` (gates.volume), and those its band only
    warns of (assignments: they ramp up after a launch): the gate's own
    days_frame over the staged rows. A last day exported part-way, or activity that ended (an experiment's
    enrolment), is held back, which a user should know before the first run, not find in the results. And the
    days its freshness rule only warns of (predictions, labels): a weekly batch missing from the landing zone."""
    from orchestration.lib.quality_gate import days_frame, load_suite, suite_names

    conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
    # materialize runs every day the landing zone covers: a table's days after its own last are judged too
    ends = [conn.execute(f"SELECT max(CAST(_ts AS DATE)) FROM t_{t}").fetchone()[0] for t in sorted(dated)]
    end = max((d for d in ends if d is not None), default=None)
    holds, warns, band_warns = {}, {}, {}
    for name in suite_names():
        suite = load_suite(name)
        table, by = suite["table"], suite.get("volume_by")
        blocking, warning = _volume_rules(suite, True), _volume_rules(suite, False)
        if table not in dated or not blocking | warning:
            continue
        group = f", {_q(by)}" if by else ""
        conn.execute(
            f"CREATE OR REPLACE VIEW raw.{table} AS SELECT CAST(_ts AS DATE) AS _partition_date{group} "
            f"FROM t_{table} WHERE _ts IS NOT NULL"
        )
        conn.execute(  # the gate reads a quarantined row's _reason (a copy is not read)
            f"CREATE OR REPLACE VIEW raw_quarantine.{table} AS "
            f"SELECT *, CAST(NULL AS VARCHAR) AS _reason FROM raw.{table} WHERE false"
        )
        first = conn.execute(f"SELECT min(_partition_date) FROM raw.{table}").fetchone()[0]
        if first is None:
            continue
        days = days_frame(conn, suite, first, end, gate)
        below, above = days["volume_deviation"] < -1, days["volume_spike"] > 1
        stale = ~days["fresh"].astype(bool)
        held = (below & ("volume_deviation" in blocking)) | (above & ("volume_spike" in blocking))
        held |= stale & ("fresh" in blocking)
        if held := _days_of(days[held]):
            holds[table] = held
        if "fresh" in warning and (warned := _days_of(days[stale])):
            warns[table] = warned
        if "volume_deviation" in warning and (band := _days_of(days[below])):
            band_warns[table] = band
    return holds, warns, band_warns


def _days_of(frame) -> list[date]:
    """The distinct days of a days_frame's rows, in order."""
    return sorted({d.date() if hasattr(d, "date") else d for d in frame["day"]})


def _stale_days(holds: dict[str, list[date]], conn: duckdb.DuckDBPyConnection) -> dict[str, list[date]]:
    """Of each table's held-back days, those without rows (freshness's, not the volume band's)."""
    stale = {}
    for table, days in holds.items():
        active = {d for (d,) in conn.execute(f"SELECT DISTINCT _partition_date FROM raw.{table}").fetchall()}
        if empty := [d for d in days if d not in active]:
            stale[table] = empty
    return stale


def _models(conn, found, present, columns, tables, experiments) -> list[ModelProfile]:
    if "predictions" not in found:
        return []
    _need("predictions", columns["predictions"], "model_id")
    has = present["predictions"]
    threshold = "TRY_CAST(threshold AS DOUBLE)" if "threshold" in has else "CAST(NULL AS DOUBLE)"
    score = "TRY_CAST(score AS DOUBLE)" if "score" in has else "CAST(NULL AS DOUBLE)"
    version = "model_version" if "model_version" in has else "NULL"
    rows = conn.execute(f"""
        SELECT model_id, count(*), min(_ts)::DATE, max(_ts)::DATE, count(DISTINCT {version}),
               avg(CASE WHEN {score} IS NULL THEN NULL WHEN {score} >= coalesce({threshold}, 0.5) THEN 1.0 ELSE 0.0 END)
        FROM t_predictions WHERE model_id IS NOT NULL GROUP BY model_id ORDER BY model_id""").fetchall()
    outside = _outside_unit_interval(conn, found["predictions"], score, threshold)
    thresholds: dict[str, list] = {}
    for model_id, value, n in conn.execute(f"""
            SELECT model_id, {threshold} AS t, count(*) AS n FROM t_predictions WHERE model_id IS NOT NULL
            GROUP BY ALL ORDER BY model_id, n DESC, t""").fetchall():
        thresholds.setdefault(model_id, []).append((value, n))
    delays: dict[str, tuple] = {}
    if "labels" in found and "prediction_id" in has and "prediction_id" in present["labels"]:
        # a prediction's delay is its first label's: that is when the outcome was first known
        for model_id, labelled, p50, p90, p99, high, calendar in conn.execute("""
                WITH first_label AS (SELECT prediction_id, min(_ts) AS labeled_at FROM t_labels
                                     WHERE _ts IS NOT NULL GROUP BY prediction_id),
                     d AS (SELECT p.model_id, prediction_id, (epoch(l.labeled_at) - epoch(p._ts)) / 86400.0 AS days,
                                  date_diff('day', p._ts::DATE, l.labeled_at::DATE) AS calendar_days
                           FROM t_predictions p JOIN first_label l USING (prediction_id) WHERE p._ts IS NOT NULL)
                -- a prediction delivered twice (quarantined as a duplicate) is labelled once
                SELECT model_id, count(DISTINCT prediction_id), quantile_cont(days, 0.5), quantile_cont(days, 0.9),
                       quantile_cont(days, 0.99), max(days), max(calendar_days)
                FROM d GROUP BY model_id""").fetchall():
            delays[model_id] = (labelled, p50, p90, p99, high, calendar)
        # the share labelled among predictions old enough for (nearly) all of their labels to have landed by the
        # zone's newest prediction or label: counted back from the last label alone, a trial's labels that stopped
        # weeks before its predictions read "93% labelled" where 46% were
        (newest,) = conn.execute(
            "SELECT greatest((SELECT max(_ts) FROM t_labels), (SELECT max(_ts) FROM t_predictions))"
        ).fetchone()
        for model_id, (_, _, _, p99, *_) in list(delays.items()):
            delays[model_id] += conn.execute(
                """SELECT count(*), count(*) FILTER (WHERE prediction_id IN (SELECT prediction_id FROM t_labels))
                   FROM t_predictions WHERE model_id = ? AND _ts <= ? - to_days(CAST(? AS INTEGER))""",
                [model_id, newest, math.ceil(p99 - 1e-9)],
            ).fetchone()
    label_rates = _label_positive_rates(conn, present) if "labels" in found and "prediction_id" in has else {}
    by_model_day, by_version_day = {}, {}
    for model_id, version, day, n in conn.execute(
        f"SELECT model_id, CAST({version} AS VARCHAR), _ts::DATE AS d, count(*) FROM t_predictions "
        "WHERE _ts IS NOT NULL AND model_id IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        by_version_day.setdefault((model_id, version), []).append((day, n))
    for (model_id, _), days in by_version_day.items():
        for day, n in days:
            by_model_day.setdefault(model_id, {}).setdefault(day, 0)
            by_model_day[model_id][day] += n
    by_model_day = {m: list(days.items()) for m, days in by_model_day.items()}
    out = []
    for model_id, n, first, last, versions, positive_rate in rows:
        m = ModelProfile(
            model_id,
            n,
            first,
            last,
            versions,
            thresholds.get(model_id, []),
            positive_rate,
            sorted(e for e, mid in experiments.items() if mid == model_id),
        )
        if model_id in delays:
            labelled, p50, p90, p99, high, calendar, *mature = delays[model_id]
            m.labelled, m.delay_median_days, m.delay_p99_days, m.delay_max_days = labelled, p50, p99, high
            m.delay_max_calendar_days = calendar
            m.delay_p90_days = p90
            if "label" in present["labels"]:
                m.late_one_class = _late_one_class(conn, model_id, math.ceil(p99 - 1e-9))
            m.late_corrections = _late_corrections(conn, model_id, m.label_horizon_days)
            m.mature, m.mature_labelled = mature or (0, 0)
        daily = TableProfile(model_id, [])
        _volume(daily, sorted(by_model_day.get(model_id, [])))
        m.daily_median, m.daily_counts, m.batch = daily.daily_median, daily.daily_counts, daily.batch
        m.daily_rate = daily.daily_rate
        for (mid, version), days in by_version_day.items():
            if mid == model_id:  # drift is judged per version: over the version's own days
                own = TableProfile(f"{model_id} {version}", [])
                _volume(own, days)
                m.version_daily_medians[version] = own.daily_median
                m.version_daily_rates[version] = own.daily_rate
                m.version_days[version] = days
        m.scores_outside = outside.get(model_id, 0)
        m.label_positive_rate = label_rates.get(model_id)
        out.append(m)
    return out


LATE_ONE_CLASS_MIN = 3  # labels after the p99, all of one class, before init keeps them in the horizon


def _late_one_class(conn, model_id: str, horizon: int) -> tuple[int, int] | None:
    """(how many, the class) of the model's first labels later than ``horizon`` calendar days after their
    prediction's day, when at least LATE_ONE_CLASS_MIN and all of one class (0 or 1); else None."""
    late, classes, value = conn.execute(
        """
        WITH first_label AS (
            SELECT prediction_id, min(_ts) AS labeled_at, arg_min(TRY_CAST(label AS INTEGER), _ts) AS label
            FROM t_labels WHERE _ts IS NOT NULL GROUP BY prediction_id)
        SELECT count(*), count(DISTINCT l.label), min(l.label)
        FROM (SELECT DISTINCT model_id, prediction_id, _ts FROM t_predictions WHERE model_id = ? AND _ts IS NOT NULL) p
        JOIN first_label l USING (prediction_id)
        WHERE date_diff('day', p._ts::DATE, l.labeled_at::DATE) > ? AND l.label IN (0, 1)
        """,
        [model_id, horizon],
    ).fetchone()
    return (late, int(value)) if late >= LATE_ONE_CLASS_MIN and classes == 1 else None


def _late_corrections(conn, model_id: str, horizon: int) -> tuple[int, int] | None:
    """(how many, the latest one's calendar days after its prediction's day) of the model's predictions with a label
    event after their first later than ``horizon`` calendar days after their prediction's day (a human review's
    correction), which runs never read: the horizon is set from first labels (a trial's correction 63 days after
    its prediction, past a horizon of 61, left the wrong label in every metric); None without any."""
    late, latest = conn.execute(
        """
        WITH events AS (
            SELECT prediction_id, _ts, min(_ts) OVER (PARTITION BY prediction_id) AS first_at FROM t_labels
            WHERE _ts IS NOT NULL)
        SELECT count(DISTINCT prediction_id), max(date_diff('day', p._ts::DATE, e._ts::DATE))
        FROM (SELECT DISTINCT prediction_id, _ts FROM t_predictions WHERE model_id = ? AND _ts IS NOT NULL) p
        JOIN events e USING (prediction_id)
        WHERE e._ts > e.first_at AND date_diff('day', p._ts::DATE, e._ts::DATE) > ?
        """,
        [model_id, horizon],
    ).fetchone()
    return (late, int(latest)) if late else None


def _label_positive_rates(conn, present) -> dict[str, float]:
    """Per model, the share of its labelled predictions whose label is 1, each prediction's label resolved as
    stg_labels resolves it: a human review's over an implicit one, then the latest."""
    if not {"prediction_id", "label"} <= present["labels"]:
        return {}
    human_first = "label_source = 'human_review' DESC, " if "label_source" in present["labels"] else ""
    return dict(
        conn.execute(f"""
            WITH resolved AS (
                SELECT prediction_id, first(TRY_CAST(label AS INTEGER) ORDER BY {human_first}_ts DESC) AS label
                FROM t_labels WHERE TRY_CAST(label AS INTEGER) IN (0, 1) GROUP BY prediction_id)
            SELECT model_id, avg(label)
            FROM (SELECT DISTINCT model_id, prediction_id FROM t_predictions WHERE model_id IS NOT NULL)
            JOIN resolved USING (prediction_id) GROUP BY model_id""").fetchall()
    )


# the default calibration_gap_max is for labels half positive: a rarer outcome's gaps are as much smaller
CALIBRATION_GAP_PER_RATE = Bias().calibration_gap_max / 0.5


def calibration_gap_max(models: list[ModelProfile]) -> tuple[float, ModelProfile | None]:
    """bias.calibration_gap_max scaled to the rarest outcome among the models' labels, 0.2 x min(p, 1 - p) to 2
    significant figures (the default's 0.1 at p = 0.5 and never above it), and the model whose labels set it
    (None: the default). The bias settings are project-wide: the rarest outcome's model needs the smallest."""
    default = Bias().calibration_gap_max
    rates = [m for m in models if m.rarer_outcome_rate]  # 0 or None: nothing to scale by
    if not rates:
        return default, None
    rarest = min(rates, key=lambda m: m.rarer_outcome_rate)
    scaled = float(f"{CALIBRATION_GAP_PER_RATE * rarest.rarer_outcome_rate:.2g}")
    return (scaled, rarest) if scaled < default else (default, None)


def _unscaled_gap(models: list[ModelProfile], rarest: ModelProfile | None) -> str:
    """Why calibration_gap_max could not be scaled to a model's labels ('' where it was, or needed not be): labels of
    one class so far (a trial's deaths landed months before its survivors: 0.1 kept, unsaid) or none yet."""
    one_class = [m for m in models if m.label_positive_rate in (0, 1)]
    if one_class:
        said = ", ".join(f"{m.model_id}'s labels so far are all {m.label_positive_rate:g}" for m in one_class)
        scale = f"{CALIBRATION_GAP_PER_RATE:g} x min(p, 1 - p), p their share positive"
        if rarest is not None:
            return (
                f"({said}: no rarer outcome to scale by yet, so {rarest.model_id}'s sets it; once both outcomes have "
                f"landed, run init again, or set {scale} should theirs be rarer)"
            )
        return (
            f"the default {Bias().calibration_gap_max:g}, unscaled: {said}, so there is no rarer outcome to scale it "
            f"by yet; once both outcomes have landed, set {scale}, or run init again"
        )
    if rarest is None and models and all(m.label_positive_rate is None for m in models):
        return (
            f"the default {Bias().calibration_gap_max:g}: no label of 0 or 1 yet to scale it by "
            f"({CALIBRATION_GAP_PER_RATE:g} x min(p, 1 - p), p the labels' share positive)"
        )
    return ""


def _outside_unit_interval(conn, files: list[Path], score: str, threshold: str) -> dict[str, int]:
    """Per model, the scores outside [0, 1] (the loader quarantines those rows). Scores and thresholds are
    probabilities; a threshold outside [0, 1], or mostly such scores, is a unit problem (percentages, logits)
    that no quarantine fixes: an InitError naming it."""
    where = files[0] if len(files) == 1 else files[0].parent
    out = {}
    for model_id, scored, bad, top, bad_threshold, top_threshold in conn.execute(f"""
            SELECT model_id, count({score}), count_if({score} NOT BETWEEN 0 AND 1), max({score}),
                   count_if({threshold} NOT BETWEEN 0 AND 1), max({threshold})
            FROM t_predictions WHERE model_id IS NOT NULL GROUP BY model_id ORDER BY model_id""").fetchall():
        bad, bad_threshold = bad or 0, bad_threshold or 0  # NULL: a file lacks the column (noted at that file)
        if bad_threshold:
            raise InitError(
                f"{where}: model '{model_id}': {bad_threshold} threshold(s) outside [0, 1], e.g. {top_threshold:g}: "
                + PROBABILITY_HINT
            )
        if bad > scored / 2:
            raise InitError(
                f"{where}: model '{model_id}': {bad} of {scored} scores are outside [0, 1] (the largest {top:g}), "
                f"and the loader quarantines such rows: {PROBABILITY_HINT}"
            )
        out[model_id] = bad
    return out


def _user_references(conn, found, present) -> tuple[dict[str, tuple[int, int, int]], int]:
    """Per table naming users (predictions, assignments, sessions, orders): its rows whose user_id is no users row (the gate's
    user_known holds such a day back), and how many would match once leading zeros are dropped on both sides
    (an id written 000001 in one export and 1 in another); and the user_ids the users table repeats."""
    if "users" not in found or "user_id" not in present["users"]:
        return {}, 0
    repeated = conn.execute(
        "SELECT count(*) FROM (SELECT user_id FROM t_users WHERE user_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone()[0]
    unknown = {}

    def as_text(table: str) -> str:  # the user_id as the loader lands it (a float 2.0 is '2')
        return _cast("user_id", "VARCHAR", _scan_columns(conn, f"t_{table}").get("user_id"))

    known_ids = as_text("users")
    for table in ("predictions", "assignments", "sessions", "orders"):
        if table not in found or "user_id" not in present[table]:
            continue
        missing, rows, padded = conn.execute(
            f"""
            WITH known AS (SELECT DISTINCT {known_ids} AS user_id FROM t_users),
            named AS (SELECT {as_text(table)} AS user_id FROM t_{table})
            SELECT count(*) FILTER (WHERE k.user_id IS NULL), count(*),
                count(*) FILTER (
                    WHERE k.user_id IS NULL AND ltrim(t.user_id, '0') IN (SELECT ltrim(user_id, '0') FROM known)
                )
            FROM named t LEFT JOIN known k ON k.user_id = t.user_id
            WHERE t.user_id IS NOT NULL
            """
        ).fetchone()
        if missing:
            unknown[table] = (missing, rows, padded)
    return unknown, repeated


def _orphan_labels(conn, found, present) -> tuple[int, int, list[date]] | None:
    """Labels whose prediction_id is no predictions row in the landing zone: their rows, the label rows, and the
    days (of labeled_at) where they exceed gates.rows' default, which the labels gate (prediction_known) holds back
    whole: a trial's 469 predictions missing from their export held back 11 label days, 13,635 valid labels with
    them, and init said nothing."""
    if not {"labels", "predictions"} <= set(found) or "prediction_id" not in present["labels"] & present["predictions"]:
        return None

    def as_text(table: str) -> str:
        return _cast("prediction_id", "VARCHAR", _scan_columns(conn, f"t_{table}").get("prediction_id"))

    rule = RowGate()
    days = conn.execute(
        f"""
        WITH known AS (SELECT DISTINCT {as_text("predictions")} AS id FROM t_predictions),
        labels AS (SELECT {as_text("labels")} AS id, CAST(_ts AS DATE) AS day FROM t_labels WHERE _ts IS NOT NULL)
        SELECT l.day, count(*) FILTER (WHERE k.id IS NULL AND l.id IS NOT NULL), count(*)
        FROM labels l LEFT JOIN known k ON k.id = l.id GROUP BY ALL ORDER BY 1
        """
    ).fetchall()
    missing = sum(m for _, m, _ in days)
    if not missing:
        return None
    held = [day for day, m, rows in days if m > allowance(rule, rows)]  # the gate's own rule
    return missing, sum(rows for *_, rows in days), held


def _scored_users(conn, found, present) -> str:
    """The users fairness is judged on: those with predictions (a column only unscored users have is no group
    of a model's), or every user when predictions name none of them."""
    if "predictions" not in found or not {"user_id"} <= present["predictions"] & present["users"]:
        return "t_users"
    scored = "(SELECT * FROM t_users WHERE CAST(user_id AS VARCHAR) IN (SELECT user_id FROM t_predictions)) AS scored"
    return scored if conn.execute(f"SELECT count(*) FROM {scored}").fetchone()[0] else "t_users"


def _group_counts(conn, present, judged: list[tuple[str, ...]], labelled: bool) -> dict:
    """Per model and judged attribute (its users columns), the predictions (``labelled``: the labelled ones) of
    each group over the landing zone, grouped as the marts group them: values joined with '|', a null value or a
    user the users table lacks 'unknown', each user's earliest signup row (the loader keeps it)."""
    linked = {"prediction_id", "user_id"} <= present.get("predictions", set()) and "user_id" in present.get(
        "users", set()
    )
    if not judged or not linked or (labelled and "prediction_id" not in present.get("labels", set())):
        return {}
    only = "AND prediction_id IN (SELECT prediction_id FROM t_labels)" if labelled else ""
    header = {name.strip(): name for name, *_ in conn.execute("DESCRIBE t_users").fetchall()}  # 'gender ' too
    columns = sorted({c for combo in judged for c in combo})
    earliest = _q(header["signup_at"]) if "signup_at" in header else "NULL"
    values = ", ".join(f"coalesce({_group_text(header[c])}, 'unknown') AS {_q(c)}" for c in columns)
    groups = " UNION ALL ".join(
        f"SELECT l.model_id, {i} AS judged, CASE WHEN u.user_id IS NULL THEN 'unknown' ELSE "
        f"concat_ws('|', {', '.join(f'u.{_q(c)}' for c in combo)}) END AS group_value FROM labelled l "
        "LEFT JOIN users u USING (user_id)"
        for i, combo in enumerate(judged)
    )
    out: dict = {}
    for model_id, i, group, n in conn.execute(f"""
            WITH users AS (
                SELECT CAST(user_id AS VARCHAR) AS user_id, {values} FROM t_users
                QUALIFY row_number() OVER (PARTITION BY CAST(user_id AS VARCHAR) ORDER BY {earliest}) = 1),
            labelled AS (
                SELECT DISTINCT model_id, prediction_id, user_id FROM t_predictions
                WHERE model_id IS NOT NULL {only})
            SELECT model_id, judged, group_value, count(*) FROM ({groups}) GROUP BY ALL ORDER BY ALL""").fetchall():
        out.setdefault(model_id, {}).setdefault(judged[i], {})[group] = n
    return out


def _group_text(column: str) -> str:
    """A users value as SQL text as the marts name its group (dbt macro group_text): '2', not '2.0', for a whole
    number of a float column (both engines cast 2.0 to '2.0')."""
    text = f"CAST({_q(column)} AS VARCHAR)"
    return f"CASE WHEN regexp_replace({text}, '^-?[0-9]+[.]0$', '') = '' THEN regexp_replace({text}, '[.]0$', '') ELSE {text} END"


def _name_tokens(column: str) -> set[str]:
    """A column name's words, split on separators and case: leg_black, isFemale -> {leg, black}, {is, female}; a
    group's name after 'non' is its word too (a census's nonwhite -> {nonwhite, white})."""
    words = set(re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", column).lower()))
    return words | {w[3:] for w in words if w.startswith("non") and w[3:] in GROUP_TOKENS}


def _protected_word(word: str) -> bool:
    """A word of a column's name (_name_tokens) naming a protected characteristic: a PROTECTED_TOKENS name, one cut
    short or run together by a PROTECTED_PREFIXES start (raceth, ethn), or a name with a GROUPING_SUFFIXES coding
    word (agegrp); racetrack, racer, tracer and agent are none."""
    if word in PROTECTED_TOKENS or word.startswith(PROTECTED_PREFIXES):
        return True
    return any(word.endswith(end) and word[: -len(end)] in PROTECTED_TOKENS for end in GROUPING_SUFFIXES)


def _indicator(tokens: set[str], values: list[str], distinct: int) -> tuple[str, str] | None:
    """(member's value, the other's) of a column naming a protected group and holding two values such as 0/1."""
    if distinct != 2 or not tokens & GROUP_TOKENS:
        return None
    by_lower = {v.lower(): v for v in values}
    for member, other in INDICATOR_VALUES:
        if set(by_lower) == {member, other}:
            return by_lower[member], by_lower[other]
    return None


def _attributes(conn, found, present) -> tuple[list[AttributeCandidate], int]:
    users = conn.execute("SELECT count(*) FROM t_users").fetchone()[0]
    scope = _scored_users(conn, found, present)
    described = conn.execute("DESCRIBE t_users").fetchall()
    columns = [
        name
        for name, dtype, *_ in described
        if not NOT_ATTRIBUTE.search(name.strip())
        and name not in ("filename",)
        and not any(k in dtype.upper() for k in ("TIMESTAMP", "DATE", "TIME"))
    ]
    if not columns:
        return [], users
    # counted as the marts group them (group_text): the distinct values are the groups
    counts = conn.execute(
        "SELECT "
        + ", ".join(f"count(DISTINCT {_group_text(c)}), count_if({_q(c)} IS NULL)" for c in columns)
        + (", count(DISTINCT user_id)" if "user_id" in present["users"] else ", count(*)")
        + " FROM t_users"
    ).fetchone()
    per_user = counts[-1]
    # a group column is one over every user (cardinality); judged it can be only where scored users differ in it
    scored = conn.execute(
        "SELECT " + ", ".join(f"count(DISTINCT {_group_text(c)})" for c in columns) + f" FROM {scope}"
    ).fetchone()
    out = []
    for i, col in enumerate(columns):
        distinct, nulls = counts[2 * i], counts[2 * i + 1]
        tokens = _name_tokens(col)
        if ID_NAME.search(col.strip()) and distinct >= per_user:
            continue  # an identifier, one value per user: no group
        protected = any(map(_protected_word, tokens))
        if distinct > MAX_GROUPS and not protected and distinct * MIN_USERS_PER_GROUP > users:
            continue  # an id-like or continuous column: not a group
        values = []
        if distinct <= MAX_GROUPS:
            values = [
                str(v[0])
                for v in conn.execute(
                    f"SELECT {_group_text(col)} AS v, count(*) AS n FROM t_users WHERE {_q(col)} IS NOT NULL "
                    f"GROUP BY v ORDER BY n DESC, v LIMIT {SHOWN_VALUES}"
                ).fetchall()
            ]
        indicator = _indicator(tokens, values, distinct)
        among = scored[i] if scope != "t_users" else None
        # named as the loader keeps it: 'gender ' in a header is the column 'gender'
        out.append(
            AttributeCandidate(col.strip(), distinct, nulls, values, protected or bool(indicator), among, indicator)
        )
    out.sort(key=lambda a: (not a.proposed, a.distinct < 2, a.column))
    return out, users


# ------------------------------------------------------------------ writing


def _days(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _thresholds_text(m: ModelProfile) -> str:
    seen = [(t, n) for t, n in m.thresholds if t is not None]
    if not seen:
        return "no thresholds in predictions: 0.5 is assumed (score >= 0.5 is a positive decision)"
    shown = ", ".join(f"{t:g} ({n} rows)" for t, n in seen[:5]) + (" ..." if len(seen) > 5 else "")
    if len(seen) == 1:
        return f"threshold seen in predictions: {seen[0][0]:g} on every row that has one"
    return f"{len(seen)} distinct thresholds in predictions: {shown}; each row's own is used"


def _flow(mapping: dict) -> str:
    """A mapping of numbers and booleans (or of mappings of them) in YAML flow style: {a: {b: 0.5, c: true}}."""

    def value(v) -> str:
        if isinstance(v, dict):
            return _flow(v)
        return str(v).lower() if isinstance(v, bool) else f"{v:g}"  # a bool formats as 1 with :g

    return "{" + ", ".join(f"{k}: {value(v)}" for k, v in mapping.items()) + "}"


def _printable(value: str) -> str:
    """A data value as a YAML comment may hold it: a control character (a cp1252 byte read as latin-1) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


# the longest PSI pool (and drift reference) init writes for a daily model: a pool averages its days, so a drift
# starting today shows only once it fills enough of them, and retraining counts a pooled verdict once per pool
# window (retraining.persist_days 3 of 28-day pools: 12 weeks); four weeks is also retraining's training window
POOL_DAYS_MAX = 28


def _psi_days(m: ModelProfile) -> int | None:
    """The calendar days whose predictions reach the PSI rule's min_count, where the default pool_days' do not:
    a weekly batch model's whole weeks of batches (a batch of 150 needs 14 days: two batches); a daily model's
    whole weeks at its calendar rate, up to POOL_DAYS_MAX. Whole weeks: any pool of them holds every weekday
    once (a 10-day pool of a weekday-only or every-other-day model holds fewer predictions ending on some days
    than on others). None: the default suffices, or no pool within the cap does."""
    psi = AlertRules().psi
    if not m.made_in(1) or m.made_in(psi.pool_days) >= psi.min_count:
        return None
    if m.batch:
        # not capped: a batch under min_count is judged only on a pool of the weeks that reach it, and a cap (4
        # batches of 20: 80 values) would leave its drift never judged; the cost, a slow verdict, is said in REVIEW
        return WEEK * m.batch.weeks_for(psi.min_count)
    days = WEEK * math.ceil(psi.min_count / m.made_in(WEEK) - 1e-9)
    return days if days <= POOL_DAYS_MAX else None


def _held_said(m: ModelProfile, days: int) -> str:
    """'about 210 predictions' in ``days`` ('7 batch(es), about 210 predictions' for a weekly batch model)."""
    batches = f"{days // WEEK * len(m.batch.days)} batch(es), " if m.batch else ""
    return f"{batches}about {m.made_in(days):.0f} predictions"


def _reference_grown(m: ModelProfile, days: int, min_count: int) -> int:
    """``days`` grown in whole weeks until each version's first days hold ``min_count`` predictions, as far as the
    landing zone shows them: a version that made fewer in all (or so far) leaves it be (said: _short_references);
    a daily model's no further than POOL_DAYS_MAX, as its pool."""
    for v, rows in m.version_days.items():
        if sum(n for _, n in rows) < min_count:
            continue
        needed = days
        while m.first_days_hold(needed)[v] < min_count:
            needed += WEEK
        if m.batch or needed <= POOL_DAYS_MAX:
            days = max(days, needed)
    return days


def _drift_reference(m: ModelProfile) -> tuple[int, str]:
    """drift_reference.first_days for a model, and why when not the default: the whole weeks whose predictions
    reach the PSI rule's min_count in each version's first days, counted in the landing zone (a weekly batch
    model's pace is its median batch: one batch of 20 is judged against nothing; a small daily model's as its pool,
    _psi_days), grown where a version's first weeks held fewer (_reference_grown)."""
    default = DriftReference().days
    psi_min = AlertRules().psi.min_count
    days = max(default, WEEK * m.batch.weeks_for(psi_min)) if m.batch else max(default, _psi_days(m) or 0)
    days = _reference_grown(m, days, psi_min)
    short = _short_references(m, days, psi_min)
    if days == default and not short:
        return default, ""
    return days, (
        f"each version's first {_reference_said(m, days)}: PSI is judged where the reference has "
        f"alerts.rules.psi.min_count ({psi_min}) values" + (f"; {short}" if short else "")
    )


def _reference_said(m: ModelProfile, days: int) -> str:
    """What each version's first ``days`` days hold: '98 days (14 weeks) hold v1 204, v2 303 predictions'."""
    held = m.first_days_hold(days)
    weeks = f" ({days // WEEK} weeks)" if m.batch else ""
    return f"{days} days{weeks} hold " + ", ".join(f"{v} {n}" for v, n in held.items()) + " predictions"


def _short_references(m: ModelProfile, days: int, min_count: int) -> str:
    """The versions whose first ``days`` days hold fewer than min_count predictions, said plainly: their drift is
    never judged ('version v3's first 84 days hold only 90 (so far: the landing zone holds its first 15 days)')."""
    said = []
    for v, n in m.first_days_hold(days).items():
        if n < min_count:
            rows = m.version_days[v]
            seen, made = (rows[-1][0] - rows[0][0]).days + 1, sum(k for _, k in rows)
            if seen < days:
                why = f"so far: the landing zone holds its first {seen} days"
            elif made < min_count:
                why = f"it made {made} in all"
            else:
                why = f"init writes a daily model's reference of {POOL_DAYS_MAX} days at most"
            said.append(f"version {v}'s first {days} days hold only {n} ({why})")
    if not said:
        return ""
    return "; ".join(said) + ": its drift is reported, not judged (or set drift_reference: {start, end} to a window)"


def _bias_window(models: list[ModelProfile]) -> tuple[int, str]:
    """bias.window_days, and why when not the default: the whole weeks whose batches hold bias.min_labelled
    labelled predictions of each weekly batch model (the window is project-wide: the one needing most sets it)."""
    bias = Bias()
    needed = [
        (WEEK * m.batch.weeks_for(bias.min_labelled / m.labelled_share), m)
        for m in models
        if m.batch and m.labelled_share
    ]
    days, m = max(needed, key=lambda x: x[0], default=(0, None))
    if m is None or days <= bias.window_days:
        return bias.window_days, ""
    labelled = m.batch.rows_in(days) * m.labelled_share
    return days, (
        f"{m.model_id} is scored in weekly batches: {days} days hold {days // WEEK * len(m.batch.days)} batches, about "
        f"{labelled:.0f} labelled predictions (bias.min_labelled: {bias.min_labelled}; the default "
        f"{bias.window_days} days hold about {m.batch.rows_in(bias.window_days) * m.labelled_share:.0f})"
    )


def _batch_volume(t: TableProfile, vol: VolumeGate) -> str:
    """What the volume gate makes of a weekly batch table's days, in words: a missing batch is held back, or only
    warned of where the table's freshness rule is a warning (predictions, labels)."""
    from orchestration.lib.quality_gate import stale_median

    stale = stale_median(vol.z)
    flagged = "is held back" if _fresh_blocks(t.name) else "is a warning (it blocks nothing)"
    missing = (
        f"a missing batch (its weekday empty a week after a batch of more than {stale:.1f} rows) {flagged}"
        if t.batch.median > stale
        else f"a missing batch passes too (a batch of {stale:.1f} rows or fewer may be empty by chance)"
    )
    return (
        f"the band never judges a batch (the trailing {vol.trailing_days}-day median is 0); the freshness rule "
        f"passes the other weekdays, empty every week; {missing}"
    )


def _delay_span(inf: Inference, m) -> int:
    """The days from the model's first prediction to the zone's end: the longest label delay it could show."""
    return (inf.last_day - m.first_day).days if inf.last_day and m.first_day else 0


def _delays_cut(inf: Inference, m) -> bool:
    """Whether the label delays seen are cut at the zone's end: under twice the horizon after the first prediction,
    no prediction had time to show a delay beyond it (a young feed's 7 days read as a 7-day horizon)."""
    return m.delay_p99_days is not None and _delay_span(inf, m) < 2 * m.label_horizon_days


def render(inf: Inference) -> str:
    """The commented project file; it validates with ``parse_config`` (tested)."""
    L: list[str] = []
    add = L.append
    add(f"# Project file written by `impact-ledger init --source {inf.source}`.")
    add('# Every field is documented in the README ("The project file"); lines marked REVIEW are guesses.')
    add("# Tables found: " + ", ".join(f"{t.name} ({t.rows} rows)" for t in inf.tables.values()) + ".")
    absent = [n for n in CONTRACTS if n not in inf.tables]
    if absent:
        add("# Not found (optional for some uses): " + ", ".join(absent) + ".")
    add("")
    add("partitions:")
    if inf.first_day:
        labels = " (labels included)" if "labels" in inf.tables else ""
        add(f"  # the landing zone covers {inf.first_day} .. {inf.last_day}{labels};")
        add("  # `from_data` would follow the first day of whatever the landing zone holds")
        add(f"  start: {inf.first_day.isoformat()}")
    else:
        add("  start: from_data  # no dated rows found")
    add("currency: USD  # REVIEW: the currency of orders.revenue and model_costs")
    add(f"timezone: {inf.timezone}  # REVIEW: the zone your days are in (files dated by day, KPIs per day)")
    if inf.kpi_lookback_days > 1:
        orders, most, late = inf.order_lag
        add(
            f"kpi_lookback_days: {inf.kpi_lookback_days}  # {late} of {orders} completed orders came more than a day "
            f"after their session, up to {most} days: a run recomputes the KPIs of this many days before its range"
        )
    add("")

    add("models:" + ("" if inf.models else " {}  # no predictions found: nothing to monitor"))
    for m in inf.models:
        add(f"  {m.model_id}:")
        exp = (
            f"experiment(s) {', '.join(m.experiments)} in raw experiments: attributed against its holdout"
            if m.experiments
            else "no experiment in raw experiments: monitoring only"
        )
        made = f"weekly batches: {m.batch.said('predictions')}" if m.batch else f"median {m.daily_median:g} a day"
        add(
            f"    # {m.predictions} predictions on {m.first_day} .. {m.last_day} ({made}), {m.versions} version(s); {exp}"
        )
        add(f"    experiment: {'true' if m.experiments else 'false'}")
        rate = "" if m.positive_rate is None else f" ({m.positive_rate:.1%} of predictions are positive decisions)"
        add(f"    # REVIEW{rate}: favourable if a positive decision (score >= threshold) helps the person (an offer, a")
        add("    # recommendation); harmful if it hurts (a risk score: fraud, credit default, churn risk, recidivism).")
        if HARMFUL_HINT.search(m.model_id):
            add(
                f"    # '{m.model_id}' sounds like a risk score: the decision's effect on the person decides, not the "
                "name: harmful if a positive decision works against them (a decline, a fraud hold, care deprioritised), "
                "favourable if it gives them something (an offer, a credit-line increase, a referral for care)."
            )
        add("    positive_decision: favourable")
        add(f"    # {_thresholds_text(m)}")
        if m.threshold is not None:
            add(f"    threshold: {m.threshold:g}  # used only where a prediction carries no threshold")
        if m.delay_p99_days is None:
            add("    # no labels found for this model: the default horizon; set it to how late outcomes can arrive")
        else:
            add(
                f"    # labels: {m.labelled} of {m.predictions} predictions labelled; delay in days after the prediction: "
                f"median {_days(m.delay_median_days)}, p99 {_days(m.delay_p99_days)}, max {_days(m.delay_max_days)}"
            )
            if m.delay_max_calendar_days is not None and m.delay_max_calendar_days > m.label_horizon_days:
                add(
                    f"    # (labels later than the horizon are not counted: {m.delay_max_calendar_days} keeps them all)"
                )
        if m.late_one_class:
            late, value = m.late_one_class
            p99 = max(1, math.ceil(m.delay_p99_days - 1e-9))
            # counted as a horizon counts: calendar days after the prediction's day (a label past the p99 of
            # 347.99 days on the 348th day is kept by a horizon of 348: a trial counted 5 past it where 4 were dropped)
            add(
                f"    # the {late} labels more than {p99} calendar days after their prediction's day, which a horizon "
                f"of {p99} (the p99, {m.delay_p99_days:.2f} days, rounded up) would drop, are all {value}: dropping "
                "only that class biases precision and recall, so the horizon keeps the latest label"
            )
            add(f"    label_horizon_days: {m.label_horizon_days}  # the latest label's calendar days")
        elif m.delay_p99_days is None:
            add(f"    label_horizon_days: {m.label_horizon_days}  # the default: no label to measure")
        else:
            add(f"    label_horizon_days: {m.label_horizon_days}  # p99 of the label delay, rounded up")
        coverage = m.label_coverage_rule()
        cut = bool(m.labelled) and _delays_cut(inf, m)
        if coverage or cut:
            default = AlertRules().label_coverage
            why = []
            if coverage == {"below": 0} and not m.labelled:
                why.append(
                    "no label of this model in the landing zone, so when its labels arrive is unknown: off (below 0); "
                    f"once they land, set after_days to the days by which most arrive (default {default.after_days}) "
                    "and remove below, or run init again"
                )
            elif coverage == {"below": 0}:
                wait = math.ceil(m.delay_p90_days - 1e-9)
                why.append(
                    f"90% of labels arrive only after {wait} days (p90 of the delay; over {COVERAGE_WAIT_MAX}): off "
                    f"(below 0), so predictions never labelled go unsaid; to judge it, set after_days: {wait} and "
                    f"below (each run then recomputes {wait} days; notify.horizon_days >= {wait + 2})"
                )
            if "after_days" in coverage:
                why.append(
                    f"90% of labels arrive within {coverage['after_days']} days (default: judged after {default.after_days})"
                )
            if cut:
                # a trial followed "set after_days: 71" from delays of 60-120 days seen in 74: four false alerts
                why.append(
                    f"but the delays were seen only up to the zone's end, {_delay_span(inf, m)} days after the first "
                    "prediction (the later labels of these days had not landed): the true wait is longer, so take "
                    "after_days from what you know of the outcome (at least label_horizon_days), not from this"
                )
            if "below" in coverage and coverage["below"] > 0:
                why.append(
                    f"{m.mature_labelled} of {m.mature} predictions older than the horizon are labelled "
                    f"(default: alert below {default.below})"
                )
            add(f"    # label coverage alert: {'; '.join(why)}")
        rules = {"label_coverage": coverage} if coverage else {}
        if pool := _psi_days(m):
            add(f"    # PSI of a smaller day pooled over {pool} days ({_held_said(m, pool)}; REVIEW says why)")
            rules["psi"] = {"pool_days": pool}
        if rules:
            add(f"    alerts: {_flow(rules)}")
        days, why = _drift_reference(m)
        if why:
            add(f"    # {why}")
        add(f"    drift_reference: {{first_days: {days}}}  # or {{start: YYYY-MM-DD, end: YYYY-MM-DD}}")
    orphans = sorted({mid for mid in inf.experiments.values()} - {m.model_id for m in inf.models})
    for mid in orphans:
        ids = [e for e, x in inf.experiments.items() if x == mid]
        add(f"  # experiment(s) {', '.join(ids)} test '{mid}', which has no predictions: attributed, not monitored")
    add("")

    add("# Protected attributes: users columns judged for every model (selection rate, TPR, precision per group).")
    proposed = inf.proposed_attributes
    if not inf.attributes:
        add("# REVIEW: no low-cardinality users columns found; fairness is not assessed")
    else:
        add(
            f"# Candidates ({inf.users} users): columns of few groups can be judged (add one to the list); wider ones "
            "need a banded column first:"
        )
    for a in inf.attributes:
        nulls = f", {a.nulls} null" if a.nulls else ""
        shown = [_printable(v) for v in a.values]
        values = f": {', '.join(shown)}" + (" ..." if a.distinct > len(a.values) else "") if a.values else ""
        if a.proposed and a.indicator:
            member, other = a.indicator
            add(
                f"#   {a.column}: {a.distinct} groups{nulls}{values} (an indicator of a protected group: groups "
                f"{member} vs {other}, proposed, REVIEW)"
            )
        elif a.proposed:
            add(f"#   {a.column}: {a.distinct} groups{nulls}{values} (a protected name: proposed, REVIEW)")
        elif a.distinct < 2:  # a protected name too (one gender in the data): nothing to band
            add(f"#   {a.column}: a single value{nulls}: nothing to compare")
        elif a.protected_name:
            add(
                f"#   {a.column}: {a.distinct} distinct values{nulls}: too many groups; add a banded column "
                f"(e.g. {a.column}_band) to users and judge that"
            )
        elif a.distinct > MAX_GROUPS:
            add(
                f"#   {a.column}: {a.distinct} groups{nulls}: more than fairness judges well (each group needs "
                "bias.min_labelled labels, and more groups more chance gaps); to judge it, add a column of fewer "
                "groups to users"
            )
        else:
            add(f"#   {a.column}: {a.distinct} groups{nulls}{values}")
    add(f"protected_attributes: [{', '.join(proposed)}]")
    if pair := _suggested_intersection(proposed, inf.one_hot):
        add(f"# intersections: [[{', '.join(pair)}]]  # each combination judged as one attribute")
        if inf.one_hot and set(pair) == set(inf.one_hot):
            others = {a.column: a.indicator[1] for a in inf.attributes if a.indicator}
            add(
                "#   (one-hot codes of one attribute, never two marking one user: together they name each group, "
                f"{'|'.join(others[c] for c in pair)} being none of them; a pair of them would mix groups)"
            )
    add("")

    vol = VolumeGate()
    add("gates:")
    add("  rows: {max_share: 0.01, min_count: 10}  # quarantined rows fail a day above both")
    add("  volume:")
    add("    # a day's rows vs the trailing days, judged when the trailing median reaches min_count. Rows a day:")
    for t in inf.tables.values():
        if t.batch:
            add(f"    #   {t.name}: {t.rows} rows on {t.days} day(s) in weekly batches, {t.batch.said('rows')}:")
            add(f"    #     {_batch_volume(t, vol)}")
        elif t.days:
            judged = (
                "judged"
                if t.daily_median >= vol.min_count
                else f"volume not judged (median below {vol.min_count}; empty days still are)"
            )
            add(
                f"    #   {t.name}: {t.rows} rows on {t.days} day(s), median {t.daily_median:g} (min {t.daily_min}, "
                f"max {t.daily_max}): {judged}"
            )
    add(f"    trailing_days: {vol.trailing_days}")
    add(f"    min_count: {vol.min_count}")
    add(f"    tolerance: {vol.tolerance}")
    add(f"    z: {vol.z}")
    if inf.weekly_bands:
        add(
            "    tables:  # a weekly cycle: each day against the trailing median x its weekday's share of its week "
            f"({WEEKDAY_LEVEL_WEEKS} weeks before; REVIEW lists what the default band held back)"
        )
        for table, band in inf.weekly_bands.items():
            add(f"      {table}: {_flow({'weekly': True})}  # {_weekdays(band.days, 'and')}")
    add("")

    bias = Bias()
    add("bias:")
    # a model live fewer days than the window has no more than its predictions in any window
    window, why = _bias_window(inf.models)
    held = sorted(int(m.predictions_in(window)) for m in inf.models)
    if held:
        add(
            f"  # a {window}-day window holds about {held[0]} predictions of the "
            f"smallest model; groups with fewer labelled ones than min_labelled are reported, not judged"
        )
    if why:
        add(f"  # {why}")
    add(f"  window_days: {window}  # trailing days each day's fairness verdict sums")
    add(f"  min_labelled: {bias.min_labelled}")
    add(
        f"  min_predictions: {bias.min_predictions}  # disparate impact's groups: decisions need no label (never "
        "more than min_labelled)"
    )
    add(f"  disparate_impact_min: {bias.disparate_impact_min}  # four-fifths rule on favourable-outcome rates")
    add(f"  equal_opportunity_max_difference: {bias.equal_opportunity_max_difference}")
    add(f"  equalized_odds_max_difference: {bias.equalized_odds_max_difference}")
    gap_max, rarest = calibration_gap_max(inf.models)
    if rarest is not None:
        p, rate, default = rarest.label_positive_rate, rarest.rarer_outcome_rate, bias.calibration_gap_max
        negative = f" ({1 - p:.1%} negative)" if p > 0.5 else ""
        compared = (
            "exceed the rarer outcome's rate: no real miscalibration could fail"
            if default > rate
            else (f"be {default / rate:.0%} of the rarer outcome's rate")
        )
        add(f"  # {rarest.model_id}'s labels are {p:.1%} positive{negative}: a gap of {default:g} would {compared};")
        add(f"  # {CALIBRATION_GAP_PER_RATE:g} x min(p, 1 - p) scales the default ({default:g} at 50%)")
        if len([m for m in inf.models if m.label_positive_rate is not None]) > 1:
            add("  # (bias settings are project-wide: set for the model whose labels have the rarest outcome)")
    if unscaled := _unscaled_gap(inf.models, rarest):
        add(f"  # {unscaled}")
    add(f"  calibration_gap_max: {gap_max:g}")
    add("")
    add("# Experiment metrics, attribution settings and alert rules: the defaults (README). OKRs: none yet.")
    add("okrs: {}")
    import yaml

    if inf.sources:
        add("")
        add("# Where tables come from (as the project file given to init said); the rest: the landing zone.")
        add(yaml.safe_dump({"sources": inf.sources}, sort_keys=False).rstrip())
    text = "\n".join(L) + "\n"

    parse_config(yaml.safe_load(text))  # never write a file that would not load
    return text


def _shown(days: list[date]) -> str:
    return ", ".join(map(str, days[:VOLUME_DAYS_SHOWN])) + (" ..." if len(days) > VOLUME_DAYS_SHOWN else "")


def _pooled_psi(pooled: float, psi_min: int, pool: int) -> str:
    """What a model of about ``pooled`` predictions in ``pool`` days gets of the PSI rule's pooling
    (alerts.rules.psi.pool_days)."""
    if pooled >= psi_min:
        return f"a smaller day is judged on its version's last {pool} days pooled (alerts.rules.psi.pool_days)"
    return f"its drift is reported but not judged, even pooled over {pool} days (alerts.rules.psi.pool_days)"


def _model_pool_said(m: ModelProfile, psi_min: int, pool: int) -> str:
    """_pooled_psi of a model, with the pool init writes for it (_psi_days), or why it writes none."""
    own = _psi_days(m)
    if own:
        reference, _ = _drift_reference(m)
        said = (
            f"init writes models.{m.model_id}.alerts.psi.pool_days: {own} ({_held_said(m, own)}; the default {pool} "
            f"days hold about {m.made_in(pool):.0f}) and drift_reference first_days {reference}: a smaller day is "
            f"judged on its version's last {own} days pooled"
        )
        return said + (_batch_pool_cost(m, own, reference) if m.batch else "")
    said = _pooled_psi(m.made_in(pool), psi_min, pool)
    if m.made_in(pool) < psi_min and m.daily_rate:
        needed = math.ceil(psi_min / m.daily_rate - 1e-9)
        said += (
            f"; {psi_min} values take about {needed} days, more than the longest pool init writes ({POOL_DAYS_MAX} "
            f"days: a longer one shows a new drift late), so it keeps the defaults; to judge drift anyway, set "
            f"models.{m.model_id}.alerts.psi.pool_days and drift_reference.first_days to about {needed}"
        )
        # a trial's 14 predictions of a finished pilot were told 255 days; another's two versions of ~340 each were
        # told 140 days, and no split of 340 fills a reference and a pool of 200 each
        each = m.predictions / max(m.versions, 1)
        if each < 2 * psi_min:
            of = f"its {m.predictions} predictions so far" + (
                f" over {m.versions} versions (about {each:.0f} each)" if m.versions > 1 else ""
            )
            said += (
                f" ({of} are fewer than the {2 * psi_min} a version's reference and pool of {psi_min} each need: "
                "none of its days can be judged unless it scores on)"
            )
    return said


def _batch_pool_cost(m: ModelProfile, pool: int, reference: int) -> str:
    """What a weekly batch model's long pool costs, said: the pool leaves the reference's days out, so a version's
    drift is first judged once the weeks after its reference fill it; and retraining counts a pooled verdict once
    per pool window. The versions whose pool never filled in the landing zone are named."""
    persist = Retraining().persist_days
    unjudged = [v for v in m.version_days if not m.pool_fills(v, reference, pool, AlertRules().psi.min_count)]
    never = (
        f"; in the landing zone no pool of {' or '.join(unjudged)} after its reference filled: its drift would not "
        "have been judged (a fixed drift_reference {start, end} or a lower alerts.rules.psi.min_count judges sooner)"
        if unjudged
        else ""
    )
    return (
        f" (not capped at the {POOL_DAYS_MAX} days of a daily model: fewer weeks hold too few to judge at all); a "
        f"version's drift is first judged about {reference + pool} days after its first batch (the pool follows its "
        f"reference), and retraining counts a pooled verdict once per {pool}-day pool: {persist} persisting "
        f"verdicts (retraining.persist_days) take {persist * pool} days ({persist * pool // WEEK} weeks){never}"
    )


# a well-known zone of each UTC offset, to name one where the data's times carry an offset (a zone's offset moves
# with daylight saving: each is matched on the example's own day)
WELL_KNOWN_ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def _zone_example(examples: list[str], current: str = "UTC") -> str:
    """'e.g. Europe/Berlin' (another zone where that is ``current``, the project's: a trial set to Europe/Berlin was
    told to try it), or where an example time carries a UTC offset other than 0 (a trial's labels at +08:00), a zone
    at that offset on that day: 'times with an offset here carry +08:00: e.g. Asia/Shanghai'."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    for example in examples:
        found = re.search(r"(\d{4}-\d{2}-\d{2})[T ][\d:.]+([+-]\d{2}):?(\d{2})?(?![\d:])", example)
        if not found or (found[2][1:] == "00" and (found[3] or "00") == "00"):
            continue
        sign = -1 if found[2][0] == "-" else 1
        offset = sign * timedelta(hours=int(found[2][1:]), minutes=int(found[3] or 0))
        noon = datetime.fromisoformat(found[1]).replace(hour=12)
        zones = [z for z in WELL_KNOWN_ZONES if z != current and noon.replace(tzinfo=ZoneInfo(z)).utcoffset() == offset]
        said = f"{found[2]}:{found[3] or '00'}"
        return f"times with an offset here carry {said}: e.g. {zones[0]}" if zones else f"times here carry {said}"
    return "e.g. America/New_York" if current == "Europe/Berlin" else "e.g. Europe/Berlin"


def review(inf: Inference) -> list[str]:
    """What the user should check before the first materialize, one line each."""
    out = [
        note
        + (
            ": they are left out"
            if table in inf.tables
            else ": materialize stops here until they are converted or moved"
        )
        for table, note in inf.unread.items()
    ]
    for t in inf.tables.values():
        out += [f"{note}; materialize will stop at that file until it has the column" for note in t.missing_notes]
        if t.missing_columns and not t.missing_notes:  # a database table's (no file to name)
            out.append(
                f"table '{t.name}' lacks contract column(s) {', '.join(t.missing_columns)}: materialize will "
                "stop until they are added"
            )
        if t.refused:
            where = "this file" if t.files else "this table"
            out.append(f"{t.refused}: materialize stops at {where} until its values are fixed")
    default_band = VolumeGate().tolerance
    for table, band in inf.weekly_bands.items():
        of_model = f" (model {band.model_id})" if band.model_id else ""
        # judged against its weekday's level, the band keeps its width: a wider one for the weekends passed a
        # trial's partial weekday exports (15 rows against ~95; 40% of a Thursday) and, at weekends of ~1% of the
        # weekdays, every drop short of an empty day
        out.append(
            f"gates.volume.tables.{table}: weekly written for a weekly cycle{of_model}: {band.cycle_days} of the "
            f"{band.band_days} day(s) the default band (±{default_band:g}) would "
            f"{'warn of' if band.warns else 'hold back'} are {_weekdays(band.days, 'or')} "
            f"({band.cycle.said('rows')}); each day is judged against the trailing median times its weekday's "
            f"share of its week in the {WEEKDAY_LEVEL_WEEKS} weeks before instead (from the table's fourth week), in the "
            "same band"
        )
    for table, held in inf.volume_holds.items():
        empty = inf.stale_holds.get(table, [])
        weekly = table in inf.weekly_bands
        level = "the trailing median x its weekday's share of its week" if weekly else "the trailing median"
        if band := [d for d in held if d not in empty]:
            out.append(
                f"gates.volume: the volume gate will hold back {len(band)} day(s) of {table} ({_shown(band)}): rows "
                f"far below {level}; if that is the data (a last day exported part-way, a wind-down, activity that "
                f"ended, a holiday), widen that table's band (gates.volume.tables.{table}: tolerance, z) or leave "
                "days at its end out (a held-back day makes the experiment results covering it untrustworthy)"
            )
        if empty:
            out.append(
                f"gates.volume: the freshness rule will hold back {len(empty)} day(s) of {table} ({_shown(empty)}): "
                "no rows after steady days (a day closed every week passes once the week before shows it); if that "
                f"is the data (activity that ended), raise gates.volume.tables.{table}.z (e.g. 30) or leave those "
                "days out (a held-back day makes the experiment results covering it untrustworthy)"
            )
    for table, empty in inf.stale_warnings.items():
        out.append(
            f"gates.volume: the freshness rule will warn of {len(empty)} day(s) of {table} ({_shown(empty)}): no "
            "rows after steady days (rows missing from the landing zone: an export not taken, a model or a label "
            "feed that stopped); a warning blocks nothing, the day is built without them: add them if they exist"
        )
    for table, (missing, rows, padded) in inf.unknown_users.items():
        out.append(
            f"{table}.user_id: {missing} of {rows} rows ({missing / rows:.0%}) name a user_id the users table does not "
            "have: the quality gate (user_known) holds back a day where they exceed gates.rows (1% and 10 rows)"
            + (
                f"; {padded} of them match once leading zeros are dropped: the exports write ids differently "
                "(000001 and 1): write them alike"
                if padded
                else "; export every user the other tables name"
            )
        )
    if inf.orphan_labels:
        missing, rows, held = inf.orphan_labels
        rule = RowGate()
        out.append(
            f"labels.prediction_id: {missing} of {rows} label rows name a prediction the predictions files do not "
            f"have: the labels gate (prediction_known) holds back a day where they exceed gates.rows "
            f"({rule.max_share:.0%} and {rule.min_count} rows)"
            + (
                f", {len(held)} day(s) here ({_shown(held)}), every label of those days with them (the valid ones "
                "reach no health or fairness mart until the day runs again): deliver the missing predictions, or "
                "leave those labels out of the export"
                if held
                else "; no day here exceeds it (those labels alone count toward nothing)"
            )
        )
    out += inf.variant_problems
    for model_id, (rows, near) in inf.cost_strangers.items():
        out.append(
            f"model_costs.model_id: {rows} row(s) name {model_id!r}, no model of predictions or experiments"
            + (f" (did you mean {near!r}?)" if near else "")
            + ": their cost counts toward no model (the raw_model_costs gate flags them), and a model without "
            "cost rows has its cost counted as 0: fix the id in the cost export"
        )
    out += _exposed_control_lines(inf.exposed_controls)
    if inf.repeated_users:
        out.append(
            f"users: {inf.repeated_users} user_id(s) have more than one row (history?): materialize keeps each user's "
            "earliest signup_at row and quarantines the others, so later changes (a moved city, a corrected "
            "attribute) are not used: export the current row per user"
        )
    naive = [t for t in inf.tables.values() if t.naive_times]
    zone = _zone_example([t.off_day[2] for t in inf.tables.values() if t.off_day], inf.timezone)
    rerun = (
        "; init read the days in UTC: set it first, then run init again with --config <that file> --force so the "
        "dates it infers (partitions.start, the days it counts) follow"
        if inf.timezone == "UTC"
        else ""
    )
    if naive:
        listed = ", ".join(f"{t.name}.{t.naive_column} ({t.naive_times} values)" for t in naive)
        out.append(
            f"times without a UTC offset are read as {inf.timezone} time: {listed}; if your systems write another "
            f"zone's local time ({zone}), set `timezone:` to it (or export the times with their offset, "
            f"2026-03-29T03:30:00+02:00), or each day and label delay shifts by the difference{rerun}"
        )
        rerun = ""  # said once
    out += [line for t in inf.tables.values() if (line := _exported_after_line(t))]
    for t in inf.tables.values():
        if t.off_day and not _exported_after_line(t):  # not the zone: said above
            off, dated, example = t.off_day
            out.append(
                f"{t.name}: {off:,} of {dated:,} rows of its dated files fall on another day than their file's in "
                f"{inf.timezone} time (e.g. {example}): the loader quarantines them, and holds the day back when "
                "they are more than gates.rows allows; files dated by a local day with times in UTC or with an "
                f"offset? set `timezone:` to the zone they are dated in ({zone}){rerun}"
            )
            rerun = ""
    for t in inf.tables.values():
        for column, (n, values) in t.outside_sets.items():
            allowed = next(r.allowed for r in CONTRACTS[t.name].rules if r.column == column and r.allowed)
            shown = ", ".join(f"{_printable(v)!r} ({c})" for v, c in values)
            if column == "label":  # a classifier of more than two classes, or outcomes not yet made binary
                out.append(
                    f"labels.label: {n} of {t.rows or n} rows hold values other than 0 and 1 ({shown}): the loader "
                    "quarantines them; a model's label is 1 when its positive outcome happened, else 0 (a model of "
                    "more than two classes is monitored as one model per class: README, Bring your own data)"
                )
                continue
            out.append(
                f"{t.name}.{column}: {n} of {t.rows or n} rows hold values outside {', '.join(allowed)} ({shown}): "
                f"the loader quarantines them; map them in the export (e.g. CASE {column} WHEN ... THEN "
                f"'{allowed[0]}' END AS {column})"
            )
        for column, value in t.text_numbers.items():
            out.append(
                f"{t.name}.{column}: numbers written with separators ({value!r}) are kept as text, so drift reads "
                "them as categories: export the column without thousands separators and with a decimal point"
            )
        if t.name == "orders" and inf.kpi_lookback_days > 1:
            orders, most, late = inf.order_lag
            capped = (
                f" (at most {KPI_LOOKBACK_MAX}: a later one counts only in a run over its session's day)"
                if most > KPI_LOOKBACK_MAX
                else ""
            )
            out.append(
                f"orders: {late:,} of {orders:,} completed orders came more than a day after their session (up to "
                f"{most} days): init writes kpi_lookback_days: {inf.kpi_lookback_days}{capped}, so each run recomputes "
                "that many days of KPIs and daily runs count a session's conversion as a backfill does"
            )
        for column, (distinct, bins, shown) in t.numeric_codes.items():
            more = ", ..." if distinct > len(shown) else ""
            out.append(
                f"{t.name}.{column}: {distinct} distinct whole numbers ({', '.join(map(str, shown))}{more}) fall in "
                f"{bins} of drift's decile bins, so a shift between values sharing a bin shows no drift: if they are "
                "codes (a store, a region, a subtype), export them as text with a letter (e.g. 'c7'; a Parquet "
                "string column stays text as it is), so each is a category with its own share"
            )
    for experiment_id, arms in inf.arms.items():
        from orchestration.lib.attribution import AttributionSettings  # scipy: only with an experiment

        smallest = AttributionSettings().min_units_per_arm
        if min(arms.values()) < smallest:
            sizes = ", ".join(f"{variant} {units}" for variant, units in arms.items())
            out.append(
                f"experiment {experiment_id}: {sizes} users assigned; with an arm under {smallest} "
                "(attribution.min_units_per_arm) its results are reported but not decision-grade"
            )
    labels = inf.tables.get("labels")
    bias_window = _bias_window(inf.models)[0]
    out += _batch_lines(inf, bias_window)
    newest = max((m.last_day for m in inf.models), default=None)
    for m in inf.models:
        out.append(
            f"models.{m.model_id}.positive_decision: favourable was assumed; a risk score (fraud, default, "
            "recidivism) should say harmful"
        )
        # a model that stopped while others go on (a trial's v1 handed over to v2): its end reads as an outage
        if newest is not None and (newest - m.last_day).days > (WEEK if m.batch else 1):
            out.append(
                f"models.{m.model_id}: its predictions stop on {m.last_day}, {(newest - m.last_day).days} day(s) before "
                f"the newest ({newest}): if it was retired, set models.{m.model_id}.retired_after: {m.last_day} (no "
                "volume alert nor stale-predictions warning after it; summary says retired)"
            )
        psi_rule = AlertRules().psi
        psi_min, pool = psi_rule.min_count, psi_rule.pool_days
        if short := _short_references(m, _drift_reference(m)[0], psi_min):
            out.append(f"models.{m.model_id}.drift_reference: {short}")
        usual, unit = m.per_unit
        if 0 < usual < psi_min:  # 0: no prediction time read (said above)
            out.append(
                f"models.{m.model_id}: median {usual:g} predictions {unit}: drift (PSI) is judged alone only "
                f"on days with {psi_min} values (alerts.rules.psi.min_count): below it, noise alone crosses the "
                f"threshold; {_model_pool_said(m, psi_min, pool)}"
            )
        elif small := {v: n for v, n in m.version_daily_medians.items() if 0 < n < psi_min}:
            out.append(
                f"models.{m.model_id}: drift (PSI) is judged per version, alone on days with {psi_min} values "
                f"(alerts.rules.psi.min_count); median predictions a day of "
                + ", ".join(f"{v} {n:g}" for v, n in small.items())
                + f": {_pooled_psi(min(m.version_daily_rates[v] for v in small) * pool, psi_min, pool)}"
            )
        share = m.labelled_share
        if m.labelled and usual * share < (needed := Alerts().min_labelled):
            out.append(
                f"models.{m.model_id}: about {usual * share:.0f} labelled predictions {unit} (median "
                f"{usual:g} {unit}; {m.labelled_said}): precision and recall alerts are judged only on days "
                f"with {needed} (alerts.min_labelled): lower it to judge this model (smaller counts are noisier; at "
                "tens of labels the calibration alert's chi-square test fires more often than its alpha: README, "
                "alerts.min_labelled), or read its health in the marts"
            )
        labelled_in_window = m.predictions_in(bias_window) * m.labelled_share
        if few := _groups_under(inf.group_labelled.get(m.model_id, {}), labelled_in_window, Bias().min_labelled):
            out.append(
                f"models.{m.model_id}: groups under bias.min_labelled ({Bias().min_labelled} labelled predictions) in "
                f"a {bias_window}-day window, left out of the label-based verdicts: {few}"
            )
        needed = min(Bias().min_predictions, Bias().min_labelled)  # bias.Thresholds.decisions_needed
        if few := _groups_under(inf.group_predictions.get(m.model_id, {}), m.predictions_in(bias_window), needed):
            # a trial's age band never offered enrolment (0 of 71 against 97%) was left out of every verdict, unsaid
            out.append(
                f"models.{m.model_id}: groups under bias.min_predictions ({needed} predictions) in a {bias_window}-day "
                f"window, left out of disparate impact too (lower it to judge them: the verdicts allow for the noise "
                f"of small groups): {few}"
            )
        if m.threshold is None:
            out.append(f"models.{m.model_id}: predictions carry {len(m.thresholds)} thresholds; each row's own is used")
        elif not [t for t, _ in m.thresholds if t is not None]:
            out.append(f"models.{m.model_id}.threshold: none in predictions, 0.5 assumed")
        if m.scores_outside:
            out.append(
                f"models.{m.model_id}: {m.scores_outside} score(s) outside [0, 1]: the loader quarantines those rows"
            )
        if _delays_cut(inf, m):
            out.append(
                f"models.{m.model_id}.label_horizon_days: {m.label_horizon_days} from delays seen in "
                f"{_delay_span(inf, m)} days "
                "after the first prediction: delays longer than that could not be seen yet (the delays are cut at "
                "its end); set the horizon from what you know of the outcome, else later labels are never counted"
            )
        if m.delay_p99_days is None:
            why = "no labels yet" if labels is None or not labels.rows else "no label matched with readable times"
            out.append(f"models.{m.model_id}.label_horizon_days: {why}, default {m.label_horizon_days} days")
        if m.late_corrections:
            late, latest = m.late_corrections
            out.append(
                f"models.{m.model_id}.label_horizon_days: {late} prediction(s) have a later label event (a "
                f"correction?) beyond the {m.label_horizon_days} days written (the horizon follows first labels), "
                f"the latest {latest} days after its prediction: runs never read them, their earlier label stands; "
                f"set label_horizon_days to {latest} to count them"
            )
        window = Retraining().training_window_days
        if m.delay_p99_days is not None and m.label_horizon_days > window:
            # a trial's 125-day credit labels: its first request was blocked (no label known by its day), for good
            out.append(
                f"models.{m.model_id}: labels land up to {m.label_horizon_days} days after the prediction, more than "
                f"retraining.training_window_days ({window}): a retraining snapshot holds the window's labels known "
                "by the request's day, the outcomes that land first only (none on a model's first days: such a "
                f"request is blocked); set training_window_days above {m.label_horizon_days} for matured labels"
            )
    if inf.attributes:
        proposed = inf.proposed_attributes
        out.append(f"protected_attributes: proposed {proposed or 'none'}; other candidates are commented out")
        out += [_indicator_line(a) for a in inf.attributes if a.proposed and a.indicator]
    bias = Bias()
    gap_max, rarest = calibration_gap_max(inf.models)
    if rarest is not None:
        out.append(
            f"bias.calibration_gap_max: {gap_max:g}, scaled to the rarer outcome of {rarest.model_id}'s labels "
            f"({rarest.rarer_outcome_rate:.1%}; the default {bias.calibration_gap_max:g} suits labels half positive)"
        )
    if any(m.label_positive_rate in (0, 1) for m in inf.models):  # its value waits for the other outcome
        out.append(f"bias.calibration_gap_max: {_unscaled_gap(inf.models, rarest)}")
    small = [m for m in inf.models if m.made_in(bias_window) < bias.min_labelled]
    if small:
        # how far either would have to go (a trial asked for numbers): days at the model's rate, and its whole life
        sizes = "; ".join(
            f"{m.model_id}: {m.predictions} predictions"
            + (f" over {(m.last_day - m.first_day).days + 1} days" if m.first_day and m.last_day else "")
            + (
                f", {bias.min_labelled} take about {math.ceil(bias.min_labelled / m.daily_rate)} days"
                if m.daily_rate
                else ""
            )
            for m in small
        )
        out.append(
            f"bias: {', '.join(m.model_id for m in small)} make(s) fewer than {bias.min_labelled} predictions in "
            f"{bias_window} days ({sizes}): widen bias.window_days or lower bias.min_labelled for verdicts (a "
            "window as long as a model's life holds every prediction by its last day)"
        )
    out.append("currency: USD assumed")
    return out


def _indicator_line(a: AttributeCandidate) -> str:
    member, other = a.indicator
    return (
        f"protected_attributes: {a.column} is an indicator (groups {member} vs {other}): its verdicts compare the "
        f"users it marks (group '{member}') with the others (group '{other}'); check which value marks the group"
    )


def _batch_lines(inf: Inference, window: int) -> list[str]:
    """Review lines for the tables and models whose rows land in weekly batches: said plainly, with what init
    counted in batches."""
    vol = VolumeGate()
    out = [
        f"{t.name}: rows land in weekly batches, {t.batch.said('rows')}, the other weekdays empty: volumes are "
        f"counted a batch, windows in whole weeks; {_batch_volume(t, vol)}"
        for t in inf.tables.values()
        if t.batch
    ]
    for m in inf.models:
        if m.batch:
            reference = _drift_reference(m)[0]
            out.append(
                f"models.{m.model_id}: scored in weekly batches, {m.batch.said('predictions')}: drift_reference "
                f"first_days {reference}: each version's first {_reference_said(m, reference)} (the landing zone's), "
                f"bias.window_days {window} about {m.predictions_in(window):.0f}"
            )
    return out


def _groups_under(groups: dict[tuple[str, ...], dict[str, int]], in_window: float, minimum: float) -> str:
    """The groups of each judged attribute that a bias window would hold fewer than ``minimum`` of: the model's
    ``in_window`` (labelled) predictions of a window, shared as the groups share them over the landing zone
    ('users.gender: m (~390); users.ethnicity x gender: b|f (~250), b|m (~170)'); '' when none."""
    said = []
    for columns, counts in groups.items():
        total = sum(counts.values())
        expected = {g: in_window * n / total for g, n in counts.items()}
        few = sorted((g for g, n in expected.items() if n < minimum), key=lambda g: (-expected[g], g))
        if few:
            shown = ", ".join(f"{_printable(g)} (~{expected[g]:.0f})" for g in few[:SHOWN_VALUES])
            more = f" and {len(few) - SHOWN_VALUES} more" if len(few) > SHOWN_VALUES else ""
            every = " (all its groups)" if len(few) == len(counts) else ""
            said.append(f"users.{' x '.join(columns)}: {shown}{more}{every}")
    return "; ".join(said)


def _kind(t: TableProfile) -> str:
    """Where a profiled table came from: landing, lake or database (its ``source`` label says)."""
    return "database" if t.source.startswith("database") else "lake" if t.source.startswith("lake") else "landing"


def materialize_command(inf: Inference, config: Path, source: str) -> str:
    """The first materialize to run: with the days when a database holds tables (materialize finds the days of
    files only, and the landing zone may hold none)."""
    days = ""
    if inf.first_day and any(_kind(t) == "database" for t in inf.tables.values()):
        days = f" --start {inf.first_day} --end {inf.last_day}"
    return f"impact-ledger materialize --config {config} --source {source}{days}"


def describe(inf: Inference) -> list[str]:
    """What was inferred, one line each (printed by the CLI)."""
    kinds = [_kind(t) for t in inf.tables.values()]
    where = [
        f"{kinds.count(kind)} {label}"
        for kind, label in (
            ("landing", f"in the landing zone {inf.source}"),
            ("lake", "in lake folders"),
            ("database", "in databases"),
        )
        if kind in kinds
    ]
    out = [f"{len(inf.tables)} table(s), {inf.first_day} .. {inf.last_day}: {', '.join(where)}"]
    for t in inf.tables.values():
        span = f", median {t.daily_median:g} rows a day over {t.days} day(s)" if t.days else ""
        if t.batch:
            span = f", weekly batches over {t.days} day(s): {t.batch.said('rows')}"
        where = f" ({t.source})" if t.source else ""
        held = f"{t.rows} rows" + (
            f" in {len(t.files)} file(s)" if t.files or not t.source.startswith("database") else ""
        )
        out.append(f"  {t.name}: {held}{where}{span}")
    for m in inf.models:
        exp = f"experiment {', '.join(m.experiments)}" if m.experiments else "monitoring only"
        thr = "several thresholds" if m.threshold is None else f"threshold {m.threshold:g}"
        batches = f" in weekly batches ({m.batch.said('each')})" if m.batch else ""
        out.append(
            f"  model {m.model_id}: {m.predictions} predictions{batches}, {exp}, {thr}, "
            f"label horizon {m.label_horizon_days} day(s) (p99 delay {_days(m.delay_p99_days)})"
        )
    for a in inf.attributes:
        among = "" if a.scored_distinct is None else f" ({a.scored_distinct} among scored users)"
        out.append(
            f"  users.{a.column}: {a.distinct} distinct value(s){among}"
            + (f", {a.nulls} null (an 'unknown' group)" if a.nulls else "")
            + (" -> proposed" if a.proposed else "")
        )
    return out
