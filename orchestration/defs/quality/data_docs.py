"""The Great Expectations Data Docs site: the gates' validation pages, rendered once per run.

It waits for every gated raw table (and so for the gates' verdicts), then renders
the results the gates stored that have no page yet, and the index. A gate that
fails renders the pages itself: a failed blocking gate skips this asset.
"""

import dagster as dg

from orchestration.defs.partitions import daily_partitions, single_run
from orchestration.defs.quality.checks import GATED_RAW_TABLES
from orchestration.lib.quality_gate import gx_session
from orchestration.lib.settings import gx_docs_dir

DATA_DOCS_KEY = dg.AssetKey(["quality", "data_docs"])


@dg.asset(
    key=DATA_DOCS_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="ingest",  # beside the raw tables its pages judge
    kinds={"html"},
    owners=["team:data-engineering"],
    deps=[dg.AssetKey(["raw", table]) for table in GATED_RAW_TABLES],
    description=(
        "Great Expectations Data Docs (offline HTML) of the raw tables' quality gates: a page per suite and "
        "validation, and an index. IMPACT_LEDGER_GX_DOCS=0 turns them off."
    ),
)
def data_docs_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    docs = gx_docs_dir()
    if docs is None:
        return dg.MaterializeResult(metadata={"note": "Data Docs are off (IMPACT_LEDGER_GX_DOCS=0)"})
    pages = gx_session(docs).build_docs()
    context.log.info(f"Data Docs: {pages} new validation page(s) in {docs}")
    return dg.MaterializeResult(
        metadata={"index": dg.MetadataValue.path(str(docs / "index.html")), "new_validation_pages": pages}
    )
