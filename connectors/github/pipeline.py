"""Running a GitHub load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from connectors.github.helpers import GitHubError
from connectors.loading import row_counts, run_tenant_load
from pulse.settings import raw_schema

__all__ = ["dataset_name", "load_github", "pipeline_name", "row_counts"]


def pipeline_name(tenant_slug: str) -> str:
    return f"github__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return raw_schema("github", tenant_slug)


def load_github(
    tenant_slug: str,
    credentials_url: str,
    source: DltSource,
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``raw_github__<tenant_slug>`` of the PostgreSQL at ``credentials_url``.

    The incremental cursor is stored in the destination (dlt's ``_dlt_pipeline_state``), so a
    lost ``pipelines_dir`` resumes where the last load ended. A load either lands completely
    or not at all: an error while extracting (a rejected token, an API failure) leaves no
    package behind, and is raised as the connector's own :class:`GitHubError` when it was one.
    A package left over by an earlier run whose *load* step failed (e.g. the database was
    down) is complete, so it is loaded first, then the new data is extracted.
    """
    return run_tenant_load(
        pipeline_name=pipeline_name(tenant_slug),
        dataset_name=dataset_name(tenant_slug),
        credentials_url=credentials_url,
        source=source,
        error_type=GitHubError,
        pipelines_dir=pipelines_dir,
    )
