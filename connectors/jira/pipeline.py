"""Running a Jira load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from connectors.jira.client import JiraError
from connectors.loading import row_counts, run_tenant_load
from pulse.settings import raw_schema

__all__ = ["dataset_name", "load_jira", "pipeline_name", "row_counts"]


def pipeline_name(tenant_slug: str) -> str:
    return f"jira__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return raw_schema("jira", tenant_slug)


def load_jira(
    tenant_slug: str,
    credentials_url: str,
    source: DltSource,
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``raw_jira__<tenant_slug>`` of the PostgreSQL at ``credentials_url``.

    The issue cursor is stored in the destination (dlt's ``_dlt_pipeline_state``), so a lost
    ``pipelines_dir`` resumes where the last load ended. An error while extracting lands
    nothing and is raised as the connector's own :class:`JiraError`; a package left by an
    earlier run whose load step failed is loaded first (see
    :func:`connectors.loading.run_tenant_load`).
    """
    return run_tenant_load(
        pipeline_name=pipeline_name(tenant_slug),
        dataset_name=dataset_name(tenant_slug),
        credentials_url=credentials_url,
        source=source,
        error_type=JiraError,
        pipelines_dir=pipelines_dir,
    )
