import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# GX Data Docs cost ~1 s per validation; one test turns them back on.
os.environ.setdefault("IMPACT_LEDGER_GX_DOCS", "0")
# The synthetic world's models, attributes and OKRs are declared in the demo's project file;
# tests of other data sets set their own.
os.environ.setdefault("IMPACT_LEDGER_CONFIG", os.path.join(os.path.dirname(__file__), "..", "expectations", "demo.yml"))
# Daily partitions are defined once per process (at import), so in-process runs of several worlds
# share one start before all of them; subprocess tests of other data drop it to start from their data.
os.environ.setdefault("IMPACT_LEDGER_START_DATE", "2026-01-01")
