"""Checks of a configured source, by type: `pulse source test` and the admin pages use them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulse.control import Source


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


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
        prefix = f"source {source.source_id} ({source.name}, github)"
        return CheckResult(ok, f"{prefix}: {message}")
    if source.type == "agent_platform":
        from connectors.agent_platform import check_connection as check_agent_platform

        ok, message = check_agent_platform(base_url=source.base_url, token=str(credentials.get("token", "")))
        return CheckResult(ok, f"source {source.source_id} ({source.name}, agent_platform): {message}")
    return CheckResult(False, f"source {source.source_id}: no connection check for type {source.type!r} yet")
