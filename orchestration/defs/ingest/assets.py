"""Ingest assets: one dlt multi-asset per source type, partitioned by tenant.

The asset specs come from a template dlt source (built without credentials or network);
each run loads the partition tenant's configured sources through pulse.ingest, which
records the outcome on every source.

A backfill of one tenant's source for a date range is a run of that source type's asset
with :class:`IngestConfig` (in the UI: Materialize → the launchpad's config;
from the CLI: ``pulse sync --tenant T --source S --from D1 --to D2``).
"""

import importlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import dlt
from dagster import AssetExecutionContext
from dagster_dlt import dlt_assets

from connectors.agent_platform import agent_platform_source
from connectors.github import github_source
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.translators import PulseDltTranslator
from pulse.ingest import TOOL_PACKAGES, IngestError, LoadWindow, SourceLoad, load_tenant_sources
from pulse.settings import raw_schema


class IngestConfig(dg.Config):
    """Optional: load one source only, and/or a backfill window (dates as YYYY-MM-DD, UTC).

    A window with an end leaves the incremental cursor where it was, so a backfill never makes
    the next scheduled load skip anything."""

    source: str | None = None
    """The source's name (default: every active source of this type)."""
    start: str | None = None
    """First day of the window, e.g. 2026-01-01."""
    end: str | None = None
    """Day after the window's last day, e.g. 2026-02-01."""

    def window(self) -> LoadWindow:
        return LoadWindow(start=_day(self.start, "start"), end=_day(self.end, "end"))


def _day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError as exc:
        raise dg.Failure(f"config {name}={value!r} is not a date; write it as YYYY-MM-DD") from exc
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def materialize_results(
    context: AssetExecutionContext, source_type: str, loads: list[SourceLoad]
) -> Iterator[dg.MaterializeResult]:
    """One result per raw table, with the rows each source landed in this run.

    Parents first (Dagster wants a multi-asset's outputs in topological order).
    """
    depends_on = {spec.key: {dep.asset_key for dep in spec.deps} for spec in context.assets_def.specs}
    for key in sorted(context.selected_asset_keys, key=lambda k: (len(depends_on.get(k, ())), k.to_user_string())):
        table = key.path[-1]
        rows = sum(load.rows_by_table.get(table, 0) for load in loads)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "tenant": context.partition_key,
                "rows_loaded": rows,
                "sources": ", ".join(load.source_name for load in loads) or "none configured",
                "dataset": raw_schema(source_type, context.partition_key),
            },
        )


def load_and_report(
    context: AssetExecutionContext,
    warehouse: PulseWarehouse,
    source_type: str,
    config: IngestConfig | None = None,
) -> Iterator[dg.MaterializeResult]:
    """Load the partition tenant's sources of one type; fail the step naming each failed source."""
    config = config or IngestConfig()
    try:
        window = config.window()
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc
    if window.start or window.end:
        context.log.info(f"backfill window {config.start or 'open'} .. {config.end or 'open'}")
    try:
        loads = load_tenant_sources(
            warehouse.settings(), context.partition_key, source_type, source_name=config.source, window=window
        )
    except IngestError as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={"failed_sources": ", ".join(load.source_name for load in exc.loads if not load.ok)},
        ) from exc
    yield from materialize_results(context, source_type, loads)


@dlt_assets(
    dlt_source=github_source(base_url="https://api.github.com", token="", org="template"),
    dlt_pipeline=dlt.pipeline(pipeline_name="github_template", destination="postgres", dataset_name="raw_github"),
    name="github",
    dagster_dlt_translator=PulseDltTranslator("github"),
    partitions_def=tenant_partitions,
    pool="ingest_github",
)
def github_raw(
    context: AssetExecutionContext, warehouse: PulseWarehouse, config: IngestConfig
) -> Iterator[dg.MaterializeResult]:
    """Pull requests, reviews, commits and check runs of the tenant's GitHub sources."""
    yield from load_and_report(context, warehouse, "github", config)


@dlt_assets(
    dlt_source=agent_platform_source(base_url="https://agents.example", token=""),
    dlt_pipeline=dlt.pipeline(
        pipeline_name="agent_platform_template", destination="postgres", dataset_name="raw_agent_platform"
    ),
    name="agent_platform",
    dagster_dlt_translator=PulseDltTranslator("agent_platform"),
    partitions_def=tenant_partitions,
    pool="ingest_agent_platform",
)
def agent_platform_raw(
    context: AssetExecutionContext, warehouse: PulseWarehouse, config: IngestConfig
) -> Iterator[dg.MaterializeResult]:
    """Agent runs from the tenant's agent-platform sources (runs still in progress are updated later)."""
    yield from load_and_report(context, warehouse, "agent_platform", config)


_TOOL_DESCRIPTIONS = {
    "jira": "Issues with complete changelogs, boards, sprints, fields, statuses and users of the tenant's Jira sites.",
    "clickup": "Tasks with resolved custom fields, status history, sprint lists and members of the tenant's ClickUp.",
    "azure_boards": "Work items, their revisions, iterations, fields and states of the tenant's Azure Boards projects.",
    "azure_devops_git": "Pull requests of every status, reviewers and votes, commits and linked work items.",
}


def _tool_assets(source_type: str) -> dg.AssetsDefinition:
    """The dlt multi-asset of a tool with the shared connector interface."""
    package = TOOL_PACKAGES[source_type]
    module = importlib.import_module(f"connectors.{package}")
    template = getattr(module, f"{package}_source")(
        base_url="https://template.invalid",
        credentials={"token": "template", "email": "template@example.invalid"},
        config={},
    )

    @dlt_assets(
        dlt_source=template,
        dlt_pipeline=dlt.pipeline(
            pipeline_name=f"{source_type}_template", destination="postgres", dataset_name=f"raw_{source_type}"
        ),
        name=source_type,
        dagster_dlt_translator=PulseDltTranslator(source_type),
        partitions_def=tenant_partitions,
        pool=f"ingest_{source_type}",
    )
    def _assets(
        context: AssetExecutionContext, warehouse: PulseWarehouse, config: IngestConfig
    ) -> Iterator[dg.MaterializeResult]:
        yield from load_and_report(context, warehouse, source_type, config)

    _assets.__doc__ = _TOOL_DESCRIPTIONS[source_type]
    return _assets


jira_raw = _tool_assets("jira")
clickup_raw = _tool_assets("clickup")
azure_boards_raw = _tool_assets("azure_boards")
azure_devops_git_raw = _tool_assets("azure_devops_git")
