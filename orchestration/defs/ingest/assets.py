"""Ingest assets: one dlt multi-asset per source type, partitioned by tenant.

The asset specs come from a template dlt source (built without credentials or network);
each run loads the partition tenant's configured sources through pulse.ingest, which
records the outcome on every source.
"""

from collections.abc import Iterator

import dagster as dg
import dlt
from dagster import AssetExecutionContext
from dagster_dlt import dlt_assets

from connectors.agent_platform import agent_platform_source
from connectors.github import github_source
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.translators import PulseDltTranslator
from pulse.ingest import IngestError, SourceLoad, load_tenant_sources
from pulse.settings import raw_schema


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
    context: AssetExecutionContext, warehouse: PulseWarehouse, source_type: str
) -> Iterator[dg.MaterializeResult]:
    """Load the partition tenant's sources of one type; fail the step naming each failed source."""
    try:
        loads = load_tenant_sources(warehouse.settings(), context.partition_key, source_type)
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
def github_raw(context: AssetExecutionContext, warehouse: PulseWarehouse) -> Iterator[dg.MaterializeResult]:
    """Pull requests, reviews, commits and check runs of the tenant's GitHub sources."""
    yield from load_and_report(context, warehouse, "github")


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
def agent_platform_raw(context: AssetExecutionContext, warehouse: PulseWarehouse) -> Iterator[dg.MaterializeResult]:
    """Agent runs from the tenant's agent-platform sources (runs still in progress are updated later)."""
    yield from load_and_report(context, warehouse, "agent_platform")
