"""Running an Azure Boards load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from connectors.azure_boards.helpers import AzureBoardsError
from connectors.loading import row_counts, run_tenant_load
from pulse.settings import raw_schema

__all__ = ["dataset_name", "load_azure_boards", "pipeline_name", "row_counts"]


def pipeline_name(tenant_slug: str) -> str:
    return f"azure_boards__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return raw_schema("azure_boards", tenant_slug)


def load_azure_boards(
    tenant_slug: str,
    credentials_url: str,
    source: DltSource,
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``raw_azure_boards__<tenant_slug>`` of the PostgreSQL at ``credentials_url``.

    Cursors in the destination, all-or-nothing extract, leftover packages loaded first (see
    :func:`connectors.loading.run_tenant_load`); an error while extracting is raised as the
    connector's own :class:`AzureBoardsError`.
    """
    return run_tenant_load(
        pipeline_name=pipeline_name(tenant_slug),
        dataset_name=dataset_name(tenant_slug),
        credentials_url=credentials_url,
        source=source,
        error_type=AzureBoardsError,
        pipelines_dir=pipelines_dir,
    )
