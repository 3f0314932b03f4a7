"""`dbt build` of the dbt asset run inside the Dagster process, yielding what dagster-dbt's subprocess would.

dagster-dbt starts `dbt` as a subprocess and reads its JSON log lines; here dbt runs through
`orchestration.lib.dbt_runner` and its result events go through the same dagster-dbt conversion
(`DbtCoreCliEventMessage.to_default_asset_events`), with the same node selection for a subset run. Both
engines: Spark's dbt uses the run process's session (orchestration/lib/spark_session.py).
"""

from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dbt.asset_utils import extract_runtime_selection_from_args, get_updated_cli_invocation_params_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.dbt_project import DbtProject
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from orchestration.lib.dbt_runner import DbtOutcome, invoke_dbt
from orchestration.lib.settings import temporary_env

# dagster-dbt's name for the variable carrying dbt's indirect selection (set when only some checks run)
INDIRECT_SELECTION_ENV = "DBT_INDIRECT_SELECTION"


class InProcessDbtInvocation:
    """``dbt.cli(args, context=context, target_path=target_path)`` run in this process when streamed:
    offers ``manifest`` and ``stream()`` as dagster-dbt's invocation does."""

    def __init__(
        self,
        dbt: DbtCliResource,
        args: list[str],
        context: dg.AssetExecutionContext,
        target_path: Path,
        env: dict[str, str] | None = None,
    ):
        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest={},
            dagster_dbt_translator=None,
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        self.manifest, self.translator, self.context = params.manifest, params.dagster_dbt_translator, context
        self.project: DbtProject | None = params.dbt_project
        self.target_path = target_path
        project_dir = str(self.project.project_dir if self.project else dbt.project_dir)
        # environment variables set only while dbt runs: the caller's (the run's dates) and dagster-dbt's selection
        self.env = dict(env or {})
        if params.indirect_selection:
            self.env[INDIRECT_SELECTION_ENV] = params.indirect_selection
        self.args = [
            *dbt.global_config_flags,
            *cleaned,
            *(["--target", dbt.target] if dbt.target else []),
            *(["--profile", dbt.profile] if dbt.profile else []),
            *params.selection_args,
            "--project-dir",
            project_dir,
            "--profiles-dir",
            str(dbt.profiles_dir or project_dir),
            "--target-path",
            str(target_path),
            "--log-path",
            str(target_path),  # dbt.log beside the target, as dagster-dbt's subprocess writes it
            "--no-send-anonymous-usage-stats",
        ]

    def stream(self):
        """Run dbt, then yield its models' outputs and tests' check results; raise if dbt failed."""
        with temporary_env(self.env):
            outcome = invoke_dbt(self.args)
        for raw_event in outcome.results:
            event = DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={})
            yield from event.to_default_asset_events(
                manifest=self.manifest,
                dagster_dbt_translator=self.translator,
                context=self.context,
                target_path=self.target_path,
                project=self.project,
            )
        if not outcome.success:
            raise _failure(outcome, self.target_path)


def _failure(outcome: DbtOutcome, target_path: Path) -> DagsterDbtCliRuntimeError:
    # dbt's error lines, else its own crash, else (a failure it logged at no error level) its last console lines
    errors = outcome.errors or ([str(outcome.exception)] if outcome.exception else ["\n".join(outcome.tail[-10:])])
    listed = "".join(f"\n\n{message.strip()}" for message in errors if message.strip())
    return DagsterDbtCliRuntimeError(description=f"dbt build failed: see dbt's log {target_path / 'dbt.log'}.{listed}")
