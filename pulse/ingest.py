"""Load a tenant's sources with their connectors and record the outcome on each source.

Both the Dagster ingest assets and the CLI call :func:`load_tenant_sources`; it owns the
bookkeeping every load needs: decrypt credentials, run the connector into the tenant's
dataset, record success or a secret-free error (and the failure count) on the source.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pulse import control
from pulse.db import admin_engine, database_url
from pulse.fieldmap import field_ids
from pulse.secrets import redact
from pulse.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:ingest"


@dataclass
class SourceLoad:
    """What one source's load did."""

    source_id: int
    source_name: str
    rows_by_table: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class IngestError(RuntimeError):
    """One or more sources of a tenant failed; every message names its source and what to do."""

    def __init__(self, loads: list[SourceLoad]) -> None:
        self.loads = loads
        failed = [load for load in loads if not load.ok]
        super().__init__("; ".join(f"{load.error}" for load in failed))

    @classmethod
    def no_source(cls, tenant_id: str, source_type: str, name: str) -> IngestError:
        load = SourceLoad(
            0,
            name,
            error=f"tenant {tenant_id!r} has no active {source_type} source named {name!r}; "
            "see `pulse source list --tenant " + tenant_id + "`",
        )
        return cls([load])


@dataclass(frozen=True)
class LoadWindow:
    """A backfill window: load what changed between ``start`` and ``end`` (either may be open).

    A run with an ``end`` leaves the source's incremental cursor where it was."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"the window's start {self.start:%Y-%m-%d} is not before its end {self.end:%Y-%m-%d}")


Loader = Callable[[Settings, control.Source, dict[str, Any], LoadWindow], dict[str, int]]


def _load_github(
    settings: Settings, source: control.Source, credentials: dict[str, Any], window: LoadWindow
) -> dict[str, int]:
    from connectors.github import github_source
    from connectors.github.pipeline import load_github, row_counts

    dlt_source = github_source(
        base_url=source.base_url,
        token=str(credentials.get("token", "")),
        org=str(source.config["org"]),
        repositories=source.config.get("repositories"),
        start_date=window.start,
        end_date=window.end,
        source_name=source.name,
    )
    info = load_github(
        tenant_slug=source.tenant_id,
        credentials_url=database_url(settings),
        source=dlt_source,
        pipelines_dir=str(settings.dlt_dir),
    )
    return row_counts(info)


def _load_agent_platform(
    settings: Settings, source: control.Source, credentials: dict[str, Any], window: LoadWindow
) -> dict[str, int]:
    from connectors.agent_platform import agent_platform_source
    from connectors.agent_platform.pipeline import load_agent_platform, row_counts

    dlt_source = agent_platform_source(
        base_url=source.base_url,
        token=str(credentials.get("token", "")),
        start_date=window.start,
        end_date=window.end,
        source_name=source.name,
    )
    info = load_agent_platform(
        tenant_slug=source.tenant_id,
        credentials_url=database_url(settings),
        source=dlt_source,
        pipelines_dir=str(settings.dlt_dir),
    )
    return row_counts(info)


#: Tools whose connectors share one interface (``connectors/<package>``: ``<package>_source``,
#: ``check_connection``, ``discover_fields``; ``pipeline.load_<package>``), by source type.
TOOL_PACKAGES = {
    "jira": "jira",
    "clickup": "clickup",
    "azure_boards": "azure_boards",
    "azure_devops_git": "azure_devops_git",
}
#: Source types whose work items carry custom fields that need mappings.
TRACKERS = frozenset({"jira", "clickup", "azure_boards"})


def connector_module(source_type: str) -> Any:
    """The connector package of a tool with the shared interface."""
    return importlib.import_module(f"connectors.{TOOL_PACKAGES[source_type]}")


def _load_tool(
    settings: Settings, source: control.Source, credentials: dict[str, Any], window: LoadWindow
) -> dict[str, int]:
    package = TOOL_PACKAGES[source.type]
    module = connector_module(source.type)
    pipeline = importlib.import_module(f"connectors.{package}.pipeline")
    mappings = field_ids(source.field_mappings)
    if source.type in TRACKERS and not mappings:
        from pulse.sources import discover_and_store

        mappings = field_ids(discover_and_store(settings, source.source_id, actor=SYSTEM_ACTOR).field_mappings)
    dlt_source = getattr(module, f"{package}_source")(
        base_url=source.base_url,
        credentials={key: str(value) for key, value in credentials.items()},
        config=source.config,
        field_mappings=mappings,
        start_date=window.start,
        end_date=window.end,
        source_name=source.name,
    )
    info = getattr(pipeline, f"load_{package}")(
        tenant_slug=source.tenant_id,
        credentials_url=database_url(settings),
        source=dlt_source,
        pipelines_dir=str(settings.dlt_dir),
    )
    counts: dict[str, int] = pipeline.row_counts(info)
    return counts


#: Connector entry points by source type: (settings, source, credentials, window) -> rows by table.
LOADERS: dict[str, Loader] = {
    "github": _load_github,
    "agent_platform": _load_agent_platform,
    **{source_type: _load_tool for source_type in TOOL_PACKAGES},
}


def load_tenant_sources(
    settings: Settings,
    tenant_id: str,
    source_type: str,
    *,
    source_name: str | None = None,
    window: LoadWindow | None = None,
) -> list[SourceLoad]:
    """Load every active source of ``source_type`` for a tenant (or only the one named
    ``source_name``), optionally for a backfill ``window``; raise IngestError if any failed.

    Good sources are loaded even when another fails; each failure is recorded on its source.
    """
    loader = LOADERS[source_type]
    window = window or LoadWindow()
    engine = admin_engine(settings)
    with engine.begin() as conn:
        control.require_tenant(conn, tenant_id)
        sources = [s for s in control.list_sources(conn, tenant_id, type=source_type) if s.is_active]
    if source_name is not None:
        sources = [s for s in sources if s.name == source_name]
        if not sources:
            raise IngestError.no_source(tenant_id, source_type, source_name)
    loads: list[SourceLoad] = []
    for source in sources:
        load = SourceLoad(source.source_id, source.name)
        with engine.begin() as conn:
            credentials = control.source_credentials(conn, source.source_id, settings.secret_key)
            control.record_sync_started(conn, source.source_id)
        secrets = [str(v) for v in credentials.values() if v]
        try:
            load.rows_by_table = loader(settings, source, credentials, window)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised below
            load.error = redact(f"Source {source.name!r} ({source.type}) of tenant {tenant_id!r}: {exc}", secrets)
            log.error("%s", load.error)
        with engine.begin() as conn:
            control.record_sync_result(conn, source.source_id, error=load.error, actor=SYSTEM_ACTOR)
        loads.append(load)
    if any(not load.ok for load in loads):
        raise IngestError(loads)
    return loads
