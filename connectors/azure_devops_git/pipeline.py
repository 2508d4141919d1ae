"""Running an Azure DevOps Git load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from connectors.azure_devops_git.helpers import AzureDevOpsGitError
from connectors.loading import row_counts, run_tenant_load
from pulse.settings import raw_schema

__all__ = ["dataset_name", "load_azure_devops_git", "pipeline_name", "row_counts"]

SOURCE_TYPE = "azure_devops_git"


def pipeline_name(tenant_slug: str) -> str:
    return f"{SOURCE_TYPE}__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return raw_schema(SOURCE_TYPE, tenant_slug)


def load_azure_devops_git(
    tenant_slug: str,
    credentials_url: str,
    source: DltSource,
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``raw_azure_devops_git__<tenant_slug>`` of the PostgreSQL at ``credentials_url``.

    The state that makes runs incremental (the cursor and what each open pull request looked
    like) is stored in the destination with the data, so a lost ``pipelines_dir`` resumes where
    the last load ended. An error while extracting lands nothing and leaves the state as it
    was (a re-run starts over from the same point), and comes out as the connector's own
    :class:`AzureDevOpsGitError`.
    """
    return run_tenant_load(
        pipeline_name=pipeline_name(tenant_slug),
        dataset_name=dataset_name(tenant_slug),
        credentials_url=credentials_url,
        source=source,
        error_type=AzureDevOpsGitError,
        pipelines_dir=pipelines_dir,
    )
