"""Running a ClickUp load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource

from connectors.clickup.helpers import ClickUpError
from connectors.loading import row_counts, run_tenant_load
from pulse.settings import raw_schema

__all__ = ["dataset_name", "load_clickup", "pipeline_name", "row_counts"]


def pipeline_name(tenant_slug: str) -> str:
    return f"clickup__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return raw_schema("clickup", tenant_slug)


def load_clickup(
    tenant_slug: str,
    credentials_url: str,
    source: DltSource,
    pipelines_dir: str | None = None,
) -> LoadInfo:
    """Load ``source`` into ``raw_clickup__<tenant_slug>`` of the PostgreSQL at ``credentials_url``.

    Cursor and sprint-membership state live in the destination (dlt's ``_dlt_pipeline_state``),
    so a lost ``pipelines_dir`` resumes where the last load ended. A load lands completely or not
    at all: an error while extracting (a rejected token, an API failure) leaves no package and no
    state behind and is raised as the connector's own :class:`ClickUpError`; a package left by an
    earlier run whose load step failed is loaded first (:func:`connectors.loading.run_tenant_load`).
    """
    return run_tenant_load(
        pipeline_name=pipeline_name(tenant_slug),
        dataset_name=dataset_name(tenant_slug),
        credentials_url=credentials_url,
        source=source,
        error_type=ClickUpError,
        pipelines_dir=pipelines_dir,
    )
