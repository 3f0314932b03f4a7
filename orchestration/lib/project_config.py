"""The one project file of a deployment: models, protected attributes, metrics, OKRs, thresholds.

Path: ``IMPACT_LEDGER_CONFIG`` (the CLI's ``--config`` sets it), else ``impact_ledger.yml`` in the
current directory, else none: every field then takes its default and ``assumptions()`` says what
was assumed. The file is validated on load (pydantic); an error names the file, the key and the
value. Nothing here names a demo model: the demo's own file is ``expectations/demo.yml``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

CONFIG_ENV = "IMPACT_LEDGER_CONFIG"
DEFAULT_CONFIG_NAME = "impact_ledger.yml"
# the experiment settings a project file may override (dbt_project.yml vars of these names are the defaults)
EXPERIMENT_SETTINGS = ("experiment_measures", "experiment_metrics", "attribution")
KPI_LOOKBACK_MAX = 366  # the most days kpi_lookback_days may reach back (init and summary propose at most this)


class ConfigError(ValueError):
    """A project file that cannot be used: names the file, key and value."""


def _contract_tables_only(value: dict) -> dict:
    """A mapping keyed by contract tables: an unknown name is a typo."""
    from orchestration.lib.contract import CONTRACTS

    unknown = sorted(set(value) - set(CONTRACTS))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; tables are {', '.join(CONTRACTS)}")
    return value


class _Strict(BaseModel):
    # an unknown key is a typo more often than not: refuse it
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    above: float | None = None
    below: float | None = None
    outside: float | None = None
    after_days: int | None = Field(default=None, ge=0)
    trailing_days: int | None = Field(default=None, ge=1)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    min_count: int | None = Field(default=None, ge=0)
    pool_days: int | None = Field(default=None, ge=1)  # psi, label_coverage: a small day is judged over this many days


class AlertRules(_Strict):
    """Model-health alert rules (defaults apply to every model; a model may override any of them)."""

    # population stability of every feature and the score vs the reference, judged when both sides have min_count
    # values: with 10 a day (70 in a 7-day reference) PSI of an unchanged model is ~3 (tests/unit/test_alerts.py)
    # and beyond the bins' sampling noise at alpha (a chi-square test of the day's bin counts against the
    # reference's): a 40-category feature at 200 a day crosses 0.2 on most unchanged days
    # a day with fewer than min_count values is judged on its version's last pool_days calendar days pooled (the
    # day's included), once they hold min_count: a model of 30 a day drifted strongly and was never judged
    psi: Rule = Rule(above=0.2, min_count=200, alpha=0.01, pool_days=7)
    # 10 equal-width bins, count-weighted; judged only where the Hosmer-Lemeshow test of the same bins rejects
    # calibration at alpha: ECE grows as 1 / sqrt(labelled) on a calibrated model (0.08 on most days at 45)
    expected_calibration_error: Rule = Rule(above=0.08, alpha=0.01)
    # precision below the reference window's, judged by a one-sided two-proportion test on the labelled counts
    precision_drop: Rule = Rule(alpha=0.01)
    recall_drop: Rule = Rule(alpha=0.01)
    # share labelled once after_days have passed, below the limit beyond chance (a one-sided exact binomial test of
    # the day's labelled count against the limit): a day of one prediction whose label never came is no outage;
    # a day too small for any count to reject is judged on its model's mature days of the last pool_days pooled
    label_coverage: Rule = Rule(below=0.5, after_days=7, alpha=0.01, pool_days=7)
    # vs the trailing median; a day within ±outside of its weekday's level (the same weekday 1-3 weeks back), or
    # within Poisson noise of it (two-sided exact test, p >= alpha), is the data's weekly cycle
    volume_change: Rule = Rule(outside=0.5, trailing_days=7, min_count=50, alpha=0.001)
    # a version that followed another, on each of its first 7 days with predictions against the one before: its flag
    # rate more than `outside` (relative) off that version's last 7 days and beyond chance (Fisher's exact), or its
    # scores' PSI against that version's reference above `above` beyond the bins' noise, min_count scores a side
    # (each version's drift reads against its own first days: a vendor's v2 scoring 0.1 higher went unsaid)
    version_change: Rule = Rule(above=0.2, outside=0.5, alpha=0.01, min_count=200)
    # a feature's share of rows without a value, more than `above` (absolute) over its reference days' share and
    # beyond chance (a one-sided exact test): a lab feed that lost a value on 90% of rows (29% before) went unsaid
    null_rate: Rule = Rule(above=0.1, alpha=0.01)


class DriftReference(_Strict):
    """The window each version's drift and calibration are judged against."""

    first_days: int | None = Field(default=None, ge=1)  # the first N days of each model version
    start: date | None = None  # or fixed dates
    end: date | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        fixed = self.start is not None or self.end is not None
        if fixed and (self.start is None or self.end is None):
            raise ValueError("fixed dates need both start and end")
        if fixed and self.first_days is not None:
            raise ValueError("give either first_days or start/end, not both")
        if fixed and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def is_fixed(self) -> bool:
        return self.start is not None

    @property
    def days(self) -> int:
        """first N days of each version (7 unless set; unused with fixed dates)."""
        return self.first_days or 7


def retired_models(config: ProjectConfig) -> dict[str, date]:
    """models.<id>.retired_after of the models the project file retires."""
    return {m: spec.retired_after for m, spec in config.models.items() if spec.retired_after is not None}


class ModelSpec(_Strict):
    """One monitored model. Every field is optional."""

    description: str = ""
    # true: judged against a never-exposed holdout in raw.experiments; false: monitoring only;
    # unset: whatever raw.experiments says
    experiment: bool | None = None
    threshold: float | None = Field(
        default=None, ge=0, le=1
    )  # used where predictions carry no threshold (else 0.5; stg_predictions)
    # favourable: a positive decision helps the person (an offer); harmful: it hurts (fraud, default, recidivism flag)
    positive_decision: Literal["favourable", "harmful"] = "favourable"
    label_horizon_days: int = Field(default=30, ge=1, le=3650)  # labels may arrive this long after the prediction
    drift_reference: DriftReference = DriftReference()
    alerts: dict[str, Rule] = {}  # overrides of the default alert rules
    min_precision: float | None = Field(default=None, ge=0, le=1)  # retraining floor; none unless set
    min_recall: float | None = Field(default=None, ge=0, le=1)
    # its last day of predictions: the days after it without any are its retirement, not an outage (no volume
    # alert, no stale-predictions warning, summary says retired; a trial's planned end raised 10 volume alerts)
    retired_after: date | None = None

    @field_validator("positive_decision", mode="before")
    @classmethod
    def _either_spelling(cls, value):
        # a trial wrote the US spelling and got only "Input should be 'favourable' or 'harmful'"
        return "favourable" if isinstance(value, str) and value.strip().lower() == "favorable" else value

    @field_validator("alerts")
    @classmethod
    def _known_rules(cls, value: dict[str, Rule]) -> dict[str, Rule]:
        unknown = sorted(set(value) - set(AlertRules.model_fields))
        if unknown:
            raise ValueError(f"unknown alert rule(s) {unknown}; known: {sorted(AlertRules.model_fields)}")
        return value


class Alerts(_Strict):
    min_labelled: int = Field(default=300, ge=0)  # label-based rules need this many labelled predictions a day
    rules: AlertRules = AlertRules()


class Bias(_Strict):
    window_days: int = Field(default=14, ge=1)
    min_labelled: int = Field(default=500, ge=0)  # groups with fewer labelled predictions are reported, not judged
    min_predictions: int = Field(default=100, ge=0)  # disparate impact's groups: decisions need no label
    disparate_impact_min: float = Field(default=0.8, gt=0, le=1)  # four-fifths rule on favourable-outcome rates
    equal_opportunity_max_difference: float = Field(default=0.1, ge=0, le=1)
    equalized_odds_max_difference: float = Field(default=0.1, ge=0, le=1)
    calibration_gap_max: float = Field(default=0.1, ge=0, le=1)


class Retraining(_Strict):
    persist_days: int = Field(default=3, ge=1)  # drift / calibration alerts on this many consecutive days
    training_window_days: int = Field(default=28, ge=1)
    # a day below a model's min_precision / min_recall counts beyond noise: one-sided exact binomial test at this level
    floor_alpha: float = Field(default=0.01, gt=0, lt=1)


class RowGate(_Strict):
    """Row-rule breaks (already quarantined) fail a day only above a share AND a count."""

    max_share: float = Field(default=0.01, ge=0, le=1)
    min_count: int = Field(default=10, ge=0)


class VolumeTable(_Strict):
    """One table's own volume settings (gates.volume.tables.<table>); unset fields keep gates.volume's."""

    trailing_days: int | None = Field(default=None, ge=2)
    min_count: int | None = Field(default=None, ge=0)
    tolerance: float | None = Field(default=None, gt=0)
    z: float | None = Field(default=None, gt=0)
    weekly: bool | None = None


class VolumeGate(_Strict):
    """A day's rows vs the trailing days: judged only with history and enough rows to tell noise from breakage."""

    trailing_days: int = Field(default=7, ge=2)
    min_count: int = Field(default=20, ge=0)  # days whose trailing median is below this are not judged
    tolerance: float = Field(default=0.5, gt=0)  # relative band around the trailing median ...
    z: float = Field(default=4.0, gt=0)  # ... widened to z Poisson standard deviations on small counts
    # a day against its weekday's median of the weeks before instead of the trailing days' (quality_gate.days_frame):
    # data with a weekly cycle (quiet weekends) keeps the band that catches a partial weekday export
    weekly: bool = False
    # days the business was closed (a public holiday): every table may be empty or short then, and such a day is
    # neither stale nor below its band, nor a model's volume outage (a trial's empty Easter Monday held the orders
    # back and made every later experiment result untrustworthy; z: 30 for orders switched their outages off too)
    closed_days: list[date] = Field(default_factory=list)
    # per table: e.g. sessions that end with an experiment get a wider band, the other tables keep theirs
    tables: dict[str, VolumeTable] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, tables: dict) -> dict:
        from orchestration.lib.contract import CONTRACTS

        dated = sorted(n for n, c in CONTRACTS.items() if c.time_column)
        unknown = sorted(set(tables) - set(dated))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}: the volume gate judges {dated}")
        return tables

    def for_table(self, table: str) -> VolumeGate:
        """These settings with ``table``'s own (gates.volume.tables) in place."""
        own = self.tables.get(table)
        fields = own.model_dump(exclude_none=True) if own is not None else {}
        return self.model_copy(update={**fields, "tables": {}})


class Gates(_Strict):
    rows: RowGate = RowGate()
    volume: VolumeGate = VolumeGate()


class Notify(_Strict):
    horizon_days: int = Field(default=31, ge=1)
    webhook_url: str | None = None


class Reports(_Strict):
    # daily reports kept, counted back from the newest written (~5 MB each with plotly inline: ~2 GB a year);
    # null keeps every one. An older day's report is written again by `impact-ledger report --date`
    keep_days: int | None = Field(default=90, ge=1)


CsvEncoding = Literal["utf-8", "utf-16", "latin-1"]  # the encodings DuckDB reads without an extension


class CsvFiles(_Strict):
    """How CSV files of the landing zone are decoded (comma-separated, double quotes, a header line)."""

    encoding: CsvEncoding = "utf-8"  # every table's CSV files ...
    table_encoding: dict[str, CsvEncoding] = {}  # ... except these tables', e.g. {users: latin-1}

    @field_validator("table_encoding")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        return _contract_tables_only(value)

    def encoding_of(self, table: str) -> str:
        return self.table_encoding.get(table, self.encoding)


class DatabaseSource(_Strict):
    """A table read from a database (orchestration/lib/db_sources.py): one window of the time column per day."""

    # SQLAlchemy URL without the password, e.g. postgresql+psycopg2://app@db.internal:5432/shop
    url: str
    password_env: str | None = None  # the environment variable holding the password (never the file)
    table: str | None = None  # a table or view, optionally schema-qualified (public.orders) ...
    query: str | None = None  # ... or a SELECT; :day_start and :day_end: the day's window (the project's timezone)
    time_column: str | None = None  # the column placing a row in a day (default: the contract's)

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL (dialect+driver://user@host:port/database)") from None
        if url.password is not None:
            raise ValueError(
                "the URL holds a password: remove it and name the environment variable that holds it in password_env"
            )
        return value

    @model_validator(mode="after")
    def _table_or_query(self):
        if (self.table is None) == (self.query is None):
            raise ValueError("give either table or query")
        return self


class TableSourceSpec(_Strict):
    """Where one contract table comes from instead of the landing zone: a lake folder or a database."""

    path: str | None = None  # a landing root holding <table>/*.parquet|csv|csv.gz (relative: to the project file)
    database: DatabaseSource | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.path is None) == (self.database is None):
            raise ValueError("give either path (a lake folder) or database")
        return self


class Partitions(_Strict):
    # a date, or "from_data": the first day the landing zone holds
    start: date | Literal["from_data"] = "from_data"


class ProjectConfig(_Strict):
    partitions: Partitions = Partitions()
    # where dbt builds the marts: embedded DuckDB, or Apache Spark (IMPACT_LEDGER_ENGINE overrides; lib/engine.py)
    engine: Literal["duckdb", "spark"] = "duckdb"
    currency: str = "USD"
    # the business's days: an IANA zone (Europe/Berlin). Times with an offset are loaded as this zone's wall-clock
    # time, times without one are taken as written in it, and every day (a file's, a partition's, a KPI's) is its
    # calendar day. UTC by default: a Berlin export dated by local day with `+02:00` (or `Z`) times had its rows
    # of 00:00-02:00 quarantined as stamped on the day before, and so the day held back (README: Time zone)
    timezone: str = "UTC"
    # the days before a run's range whose KPIs it recomputes: a session converts with a completed order of a later
    # day (a reply days after an email: a trial's day-by-day runs counted 4% conversion where its backfill counted
    # 42%); init writes the most days an order of the landing zone came after its session
    kpi_lookback_days: int = Field(1, ge=1, le=KPI_LOOKBACK_MAX)
    models: dict[str, ModelSpec] = {}
    protected_attributes: list[str] = []  # columns of users; judged for every model
    intersections: list[list[str]] = []  # e.g. [[gender, age_band]]: one attribute per combination
    # experiment metrics, their measures and the attribution settings; defaults: dbt_project.yml vars
    experiment_measures: dict[str, dict[str, Any]] | None = None
    experiment_metrics: dict[str, dict[str, Any]] | None = None
    attribution: dict[str, Any] | None = None
    okrs: dict[str, Any] = {}  # {objectives: [...]}; see README
    alerts: Alerts = Alerts()
    bias: Bias = Bias()
    retraining: Retraining = Retraining()
    gates: Gates = Gates()
    notify: Notify = Notify()
    reports: Reports = Reports()
    csv: CsvFiles = CsvFiles()
    sources: dict[str, TableSourceSpec] = {}  # per table: a lake folder or a database; else the landing zone

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            near = difflib.get_close_matches(value, sorted(zoneinfo.available_timezones()), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"unknown time zone {value!r}: an IANA name such as Europe/Berlin or America/New_York{hint}"
            ) from None
        return value

    @field_validator("protected_attributes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"listed twice: {sorted({v for v in value if value.count(v) > 1})}")
        return value

    @field_validator("sources")
    @classmethod
    def _source_tables(cls, value: dict[str, TableSourceSpec]) -> dict[str, TableSourceSpec]:
        from orchestration.lib.contract import CONTRACTS

        _contract_tables_only(value)
        for table, spec in value.items():
            if spec.database and spec.database.time_column and CONTRACTS[table].time_column is None:
                raise ValueError(f"{table}: time_column is for tables placed by day; {table} is a snapshot read whole")
        return value

    @model_validator(mode="after")
    def _experiment_definitions(self):
        # checked together with the defaults of the ones not set (a metric names measures, the value metric a metric)
        given = {name: getattr(self, name) for name in EXPERIMENT_SETTINGS if getattr(self, name) is not None}
        if given:
            from orchestration.lib.experiment_metrics import check_experiment_definitions
            from orchestration.lib.settings import dbt_project_vars

            defaults = dbt_project_vars()
            effective = {name: defaults.get(name) for name in EXPERIMENT_SETTINGS} | given
            effective["attribution"] = _attribution_over(defaults, self.attribution)
            check_experiment_definitions(*(effective[name] for name in EXPERIMENT_SETTINGS))
        return self

    @field_validator("intersections")
    @classmethod
    def _intersections_of_declared(cls, value: list[list[str]], info: ValidationInfo) -> list[list[str]]:
        # a field's validator, so the error names its key (a model validator's said '(top level)')
        declared = info.data.get("protected_attributes")
        for combo in value:
            if len(combo) < 2:
                raise ValueError(f"{combo} needs at least two attributes")
            unknown = [a for a in combo if declared is not None and a not in declared]
            if unknown:
                # a misspelt protected attribute shows here first: name the spelling the intersection expects
                near = {a: difflib.get_close_matches(a, declared, n=1) for a in unknown}
                hints = "".join(f"; is {m[0]!r} meant to be {a!r}?" for a, m in near.items() if m)
                raise ValueError(f"{unknown} not in protected_attributes {declared}{hints}")
        return value

    # ------------------------------------------------------------- derived

    def model(self, model_id: str) -> ModelSpec:
        """A model's settings: declared, or every default for a model found only in the data."""
        return self.models.get(model_id) or ModelSpec()

    @property
    def attribute_columns(self) -> dict[str, list[str]]:
        """Every judged attribute (declared ones and intersections, named a_x_b) -> its users columns."""
        out = {a: [a] for a in self.protected_attributes}
        out.update({"_x_".join(combo): list(combo) for combo in self.intersections})
        return out

    @property
    def max_label_horizon_days(self) -> int:
        return max([m.label_horizon_days for m in self.models.values()] or [ModelSpec().label_horizon_days])


class LoadedConfig:
    """A validated ProjectConfig with where it came from."""

    def __init__(self, config: ProjectConfig, path: Path | None):
        self.config, self.path = config, path

    def __getattr__(self, name: str):
        return getattr(self.config, name)

    def assumptions(self, predictions: bool = True) -> list[str]:
        """What a run assumes because the project file does not say it (printed by the CLI). ``predictions``
        False: the source has none (an A/B test without a model), so there is nothing to say about models."""
        c, out = self.config, []
        if self.path is None:
            out.append(
                f"no project file ({CONFIG_ENV} unset, no ./{DEFAULT_CONFIG_NAME}): every setting is a "
                "default; `impact-ledger init --source DIR` writes one from your data"
            )
        if not c.models and predictions:
            out.append(
                "no models declared: every model_id found in raw.predictions is monitored with default rules "
                "(positive decision favourable, labels within 30 days, drift vs each version's first 7 days)"
            )
        if not c.protected_attributes:
            out.append("no protected_attributes declared: fairness is not assessed")
        if c.partitions.start == "from_data":
            out.append("partitions start at the first day of the landing zone")
        return out


def config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    if value:
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={value}: no such file")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local.resolve() if local.is_file() else None


def mask_secrets(text: str) -> str:
    """Passwords in URLs (scheme://user:secret@host) as ***: a message or log never shows one."""
    return re.sub(r"(://[^/\s:@'\"]*:)[^@\s'\"]*@", r"\1***@", text)


def _models_at(loc: tuple) -> list[type[BaseModel]]:
    """The project-file sections (models) the error location ``loc`` (its last element the key) may be in: the
    keys' fields followed from ProjectConfig through mappings, lists and optional or union types."""
    kinds: list[Any] = [ProjectConfig]
    for k in loc[:-1]:
        found: list[Any] = []
        while kinds:
            kind = kinds.pop()
            origin = get_origin(kind)
            if origin in (Union, types.UnionType):
                kinds += get_args(kind)
            elif origin is dict:
                found.append(get_args(kind)[1])
            elif origin in (list, tuple) and isinstance(k, int):
                found.append(get_args(kind)[0])
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                field = kind.model_fields.get(k) if isinstance(k, str) else None
                # a name that is no field is a union member's tag (e.g. 'date'): the same section
                found.append(field.annotation if field is not None else kind)
        kinds = found
    models, seen = [], list(kinds)
    while seen:
        kind = seen.pop()
        if get_origin(kind) in (Union, types.UnionType):
            seen += get_args(kind)
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in models:
            models.append(kind)
    return models


def _nearest_key(loc: tuple) -> str:
    """'' or "; did you mean 'min_labelled'?": the known key of the section nearest an unknown one."""
    key = loc[-1] if loc else None
    if not isinstance(key, str):
        return ""
    known = sorted({name for model in _models_at(loc) for name in model.model_fields})
    near = nearest(key, known)
    return f"; did you mean '{near}'?" if near else ""


def nearest(name: str, known) -> str | None:
    """The known name closest to a misspelt one, or None: one equal but for case and separators (a trial's
    'StoreID' for 'store_id', difflib's ratio 0.53), else difflib's closest (ratio >= 0.6) ignoring case."""
    known = sorted(known)
    plain = {re.sub(r"[^0-9a-z]", "", k.lower()): k for k in reversed(known)}
    if same := plain.get(re.sub(r"[^0-9a-z]", "", name.lower())):
        return same
    by_lower = {k.lower(): k for k in reversed(known)}
    near = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return by_lower[near[0]] if near else None


def _format(error: ValidationError, path: Path | None, raw: dict) -> str:
    """One line per key: the file, the key path as written, what is wrong, and the value found."""
    by_key: dict[str, tuple[list[str], Any, bool]] = {}
    for e in error.errors():
        keys, value, present = [], raw, True
        for k in e["loc"]:
            if isinstance(value, dict) and k in value:
                keys.append(str(k))
                value = value[k]
            elif isinstance(value, list) and isinstance(k, int) and k < len(value):
                keys.append(str(k))
                value = value[k]
            elif e["type"] == "missing" or e["type"] == "extra_forbidden":
                keys.append(str(k))
                present = False
                break
            # else: a union member's tag (e.g. 'date'), not a key of the file
        where = ".".join(keys) or "(top level)"
        messages, _, _ = by_key.setdefault(where, ([], value, present))
        msg = (
            f"unknown key{_nearest_key(tuple(e['loc']))} (see the README's project-file reference)"
            if e["type"] == "extra_forbidden"
            else e["msg"].removeprefix("Value error, ")
        )
        if msg not in messages:
            messages.append(msg)
    lines = []
    for where, (messages, value, present) in by_key.items():
        shown = f" (got {mask_secrets(repr(value))})" if present and where != "(top level)" else ""
        lines.append(f"{path or 'project config'}: key '{where}': {'; or '.join(messages)}{shown}")
    return "\n".join(lines)


def parse_config(raw: Any, path: Path | None = None) -> ProjectConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path or 'project config'}: expected a mapping of keys at the top level, got {type(raw).__name__}"
        )
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err, path, raw)) from None


def load_config(path: Path | None = None) -> LoadedConfig:
    """The project file at ``path`` (default: config_path()), validated; defaults when there is none."""
    path = path or config_path()
    return _load(str(path) if path else None, _mtime(path))


def _mtime(path: Path | None) -> tuple[int, int]:
    """The file's version for the cache: an edited file is read again."""
    stat = path.stat() if path else None
    return (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader refusing a key given twice in one mapping: YAML keeps the last one silently, and a
    trial's `timezone:` added above init's `timezone: UTC` left the project in UTC, unsaid."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"'{key}' is given twice in one mapping (line {seen[key] + 1} and line {key_node.start_mark.line + 1}): "
                    "YAML would keep the last one; keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


@lru_cache(maxsize=8)
def _load(path: str | None, _version: tuple[int, int]) -> LoadedConfig:
    if path is None:
        return LoadedConfig(ProjectConfig(), None)
    file = Path(path)
    try:
        raw = yaml.load(file.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from None
    return LoadedConfig(parse_config(raw, file), file)


# ------------------------------------------------------------------ dbt vars


def config_dbt_vars(config: ProjectConfig) -> dict[str, Any]:
    """The project file as dbt vars, merged into every `dbt build --vars` (dbt cannot read the file itself).

    dbt_project.yml holds a default for each, so a plain `dbt build` still works.
    """
    defaults = ModelSpec()
    settings = {}
    for model_id, spec in config.models.items():
        ref = spec.drift_reference
        settings[model_id] = {
            "threshold": spec.threshold,
            "positive_decision": spec.positive_decision,
            "label_horizon_days": spec.label_horizon_days,
            "reference_days": None if ref.is_fixed else ref.days,
            "reference_start": ref.start.isoformat() if ref.is_fixed else None,
            "reference_end": ref.end.isoformat() if ref.is_fixed else None,
            "psi_pool_days": _psi_pool_days(config, model_id),
        }
    out: dict[str, Any] = {
        "protected_attributes": config.attribute_columns,
        "model_settings": settings,
        "default_label_horizon_days": defaults.label_horizon_days,
        "default_reference_days": defaults.drift_reference.days,
        "default_psi_pool_days": _psi_pool_days(config, None),
        "max_label_horizon_days": config.max_label_horizon_days,
        "kpi_lookback_days": config.kpi_lookback_days,
        # every run recomputes this many days before its range, so a day that gets no label at all still
        # reaches the label-coverage rule's after_days (late labels beyond it refresh their days on arrival)
        "label_lookback_days": max(
            [
                d
                for d in [config.alerts.rules.label_coverage.after_days]
                + [
                    m.alerts["label_coverage"].after_days
                    for m in config.models.values()
                    if "label_coverage" in m.alerts
                ]
                if d is not None
            ]
            or [7]
        ),
    }
    for name in EXPERIMENT_SETTINGS:
        value = getattr(config, name)
        if value is not None:
            out[name] = value
    if config.attribution is not None:  # settings, not definitions: the keys left out keep their defaults
        from orchestration.lib.settings import dbt_project_vars

        out["attribution"] = _attribution_over(dbt_project_vars(), config.attribution)
    return out


def _psi_pool_days(config: ProjectConfig, model_id: str | None) -> int:
    """The PSI rule's pool_days of a model (None: of the models the file does not override it for)."""
    override = config.models[model_id].alerts.get("psi") if model_id is not None else None
    days = [override and override.pool_days, config.alerts.rules.psi.pool_days, AlertRules().psi.pool_days]
    return next(int(d) for d in days if d is not None)


def _attribution_over(defaults: dict, given: dict | None) -> dict[str, Any]:
    """The project file's attribution settings over dbt_project.yml's (``defaults``: its vars)."""
    return (defaults.get("attribution") or {}) | (given or {})
