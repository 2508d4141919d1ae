"""Load a tenant's sources with their connectors and record the outcome on each source.

Both the Dagster ingest assets and the CLI call :func:`load_tenant_sources`; it owns the
bookkeeping every load needs: decrypt credentials, run the connector into the tenant's
dataset, record success or a secret-free error (and the failure count) on the source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pulse import control
from pulse.db import admin_engine, database_url
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


def _load_github(settings: Settings, source: control.Source, credentials: dict[str, Any]) -> dict[str, int]:
    from connectors.github import github_source
    from connectors.github.pipeline import load_github, row_counts

    dlt_source = github_source(
        base_url=source.base_url,
        token=str(credentials.get("token", "")),
        org=str(source.config["org"]),
        repositories=source.config.get("repositories"),
        source_name=source.name,
    )
    info = load_github(
        tenant_slug=source.tenant_id,
        credentials_url=database_url(settings),
        source=dlt_source,
        pipelines_dir=str(settings.dlt_dir),
    )
    return row_counts(info)


def _load_agent_platform(settings: Settings, source: control.Source, credentials: dict[str, Any]) -> dict[str, int]:
    from connectors.agent_platform import agent_platform_source
    from connectors.agent_platform.pipeline import load_agent_platform, row_counts

    dlt_source = agent_platform_source(
        base_url=source.base_url, token=str(credentials.get("token", "")), source_name=source.name
    )
    info = load_agent_platform(
        tenant_slug=source.tenant_id,
        credentials_url=database_url(settings),
        source=dlt_source,
        pipelines_dir=str(settings.dlt_dir),
    )
    return row_counts(info)


#: Connector entry points by source type: (settings, source, credentials) -> rows by table.
LOADERS: dict[str, Callable[[Settings, control.Source, dict[str, Any]], dict[str, int]]] = {
    "github": _load_github,
    "agent_platform": _load_agent_platform,
}


def load_tenant_sources(settings: Settings, tenant_id: str, source_type: str) -> list[SourceLoad]:
    """Load every active source of ``source_type`` for a tenant; raise IngestError if any failed.

    Good sources are loaded even when another fails; each failure is recorded on its source.
    """
    loader = LOADERS[source_type]
    engine = admin_engine(settings)
    with engine.begin() as conn:
        control.require_tenant(conn, tenant_id)
        sources = [s for s in control.list_sources(conn, tenant_id, type=source_type) if s.is_active]
    loads: list[SourceLoad] = []
    for source in sources:
        load = SourceLoad(source.source_id, source.name)
        with engine.begin() as conn:
            credentials = control.source_credentials(conn, source.source_id, settings.secret_key)
            control.record_sync_started(conn, source.source_id)
        secrets = [str(v) for v in credentials.values() if v]
        try:
            load.rows_by_table = loader(settings, source, credentials)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised below
            load.error = redact(f"Source {source.name!r} ({source.type}) of tenant {tenant_id!r}: {exc}", secrets)
            log.error("%s", load.error)
        with engine.begin() as conn:
            control.record_sync_result(conn, source.source_id, error=load.error, actor=SYSTEM_ACTOR)
        loads.append(load)
    if any(not load.ok for load in loads):
        raise IngestError(loads)
    return loads
