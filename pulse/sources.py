"""Checks and field discovery of a configured source: `pulse source test|discover|map`.

Every tool's connector answers the same two questions: can Pulse reach the API with these
credentials (and if not, exactly why), and which of its fields hold story points, the sprint
and the Done-Means-Tested fields (see ``pulse/fieldmap.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulse import control
from pulse.control import Source
from pulse.db import admin_engine
from pulse.fieldmap import Proposal, as_json, propose
from pulse.settings import Settings


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


class DiscoveryError(RuntimeError):
    """The tool's field metadata could not be read; the message says why."""


def _label(source: Source) -> str:
    return f"source {source.source_id} ({source.name}, {source.type})"


def check_source(source: Source, credentials: dict[str, Any]) -> CheckResult:
    """Reach the source's API with its credentials and say exactly what failed, if anything."""
    if source.type == "github":
        from connectors.github import check_connection

        ok, message = check_connection(
            base_url=source.base_url,
            token=str(credentials.get("token", "")),
            org=str(source.config.get("org", "")),
            repositories=source.config.get("repositories"),
        )
        return CheckResult(ok, f"{_label(source)}: {message}")
    if source.type == "agent_platform":
        from connectors.agent_platform import check_connection as check_agent_platform

        ok, message = check_agent_platform(base_url=source.base_url, token=str(credentials.get("token", "")))
        return CheckResult(ok, f"{_label(source)}: {message}")
    from pulse.ingest import TOOL_PACKAGES, connector_module

    if source.type in TOOL_PACKAGES:
        module = connector_module(source.type)
        ok, message = module.check_connection(source.base_url, _text(credentials), source.config)
        return CheckResult(ok, f"{_label(source)}: {message}")
    return CheckResult(False, f"{_label(source)}: no connection check for type {source.type!r} yet")


def discover(source: Source, credentials: dict[str, Any]) -> Proposal:
    """Propose field mappings from the tool's field metadata, keeping an admin's overrides."""
    from pulse.ingest import TRACKERS, connector_module

    if source.type not in TRACKERS:
        raise DiscoveryError(f"{_label(source)}: field discovery is for trackers (jira, clickup, azure_boards)")
    module = connector_module(source.type)
    try:
        candidates = module.discover_fields(source.base_url, _text(credentials), source.config)
    except Exception as exc:  # the connector's own errors say what failed
        raise DiscoveryError(f"{_label(source)}: could not read the field metadata: {exc}") from exc
    return propose(candidates, existing=source.field_mappings)


def discover_and_store(settings: Settings, source_id: int, *, actor: str) -> Source:
    """Discover a source's field mappings and store them on it (audited); returns the source."""
    engine = admin_engine(settings)
    with engine.begin() as conn:
        source = control.get_source(conn, source_id)
        credentials = control.source_credentials(conn, source_id, settings.secret_key)
    proposal = discover(source, credentials)
    with engine.begin() as conn:
        return control.set_field_mappings(conn, source_id, as_json(proposal), actor=actor)


def _text(credentials: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in credentials.items() if value is not None}
