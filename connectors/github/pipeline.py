"""Running a GitHub load for one tenant: one pipeline and one dataset per tenant."""

from __future__ import annotations

import logging
from typing import cast

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.github.helpers import GitHubError

log = logging.getLogger(__name__)


def pipeline_name(tenant_slug: str) -> str:
    return f"github__{tenant_slug}"


def dataset_name(tenant_slug: str) -> str:
    return f"raw_github__{tenant_slug}"


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
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name(tenant_slug),
        # keep ``raw_github__<slug>`` as is: dlt's snake_case naming would fold the ``__``
        destination=dlt.destinations.postgres(
            credentials_url,
            enable_dataset_name_normalization=False,
            # merge staging goes to pulse_staging_raw_github__<slug>, out of the raw_* namespace
            staging_dataset_name_layout="pulse_staging_%s",
        ),
        dataset_name=dataset_name(tenant_slug),
        pipelines_dir=cast(str, pipelines_dir),  # None: dlt's default location
    )
    try:
        if pipeline.has_pending_data:
            log.warning("%s: loading a package left by an earlier run first", pipeline.pipeline_name)
            pipeline.run()
        return pipeline.run(source)
    except PipelineStepFailed as exc:
        cause = _github_cause(exc)
        if cause is not None and exc.step == "extract":
            raise cause from exc
        raise


def _github_cause(exc: BaseException) -> GitHubError | None:
    """The connector error at the root of a dlt step failure, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, GitHubError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def row_counts(info: LoadInfo) -> dict[str, int]:
    """Rows landed per table by the load behind ``info`` (dlt's own tables left out)."""
    trace = getattr(info.pipeline, "last_trace", None)
    normalize = getattr(trace, "last_normalize_info", None)
    if normalize is None:
        return {}
    counts: dict[str, int] = normalize.row_counts
    return {table: count for table, count in counts.items() if not table.startswith("_dlt")}
