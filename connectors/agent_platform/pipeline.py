"""Running an agent-platform load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from connectors.agent_platform.helpers import AgentPlatformError
from connectors.loading import row_counts, run_tenant_load
from pulse.settings import raw_schema

__all__ = ["dataset_name", "load_agent_platform", "pipeline_name", "row_counts"]


def pipeline_name(tenant_slug: str) -> str:
    return f"agent_platform__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return raw_schema("agent_platform", tenant_slug)


def load_agent_platform(
    tenant_slug: str,
    credentials_url: str,
    source: DltSource,
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``raw_agent_platform__<tenant_slug>`` of the PostgreSQL at ``credentials_url``.

    Cursor in the destination, all-or-nothing extract, leftover packages loaded first (see
    :func:`connectors.loading.run_tenant_load`); an error while extracting is raised as the
    connector's own :class:`AgentPlatformError`.
    """
    return run_tenant_load(
        pipeline_name=pipeline_name(tenant_slug),
        dataset_name=dataset_name(tenant_slug),
        credentials_url=credentials_url,
        source=source,
        error_type=AgentPlatformError,
        pipelines_dir=pipelines_dir,
    )
