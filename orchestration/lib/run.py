"""Materialize a tenant's assets in this process (what `pulse sync --tenant T` does)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dagster as dg

from orchestration.lib.instance import ensure_dagster_home
from orchestration.lib.partitions import tenant_partitions
from pulse.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    tenant_id: str
    run_id: str
    success: bool
    failed_steps: list[str]
    error: str | None


def load_definitions() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs() if callable(defs) else defs


@dataclass(frozen=True)
class SourceBackfill:
    """One source type (optionally one named source) of a tenant, for a date window."""

    source_type: str
    source_name: str | None = None
    start: str | None = None  # YYYY-MM-DD
    end: str | None = None


def materialize_tenant(settings: Settings, tenant_id: str, backfill: SourceBackfill | None = None) -> SyncOutcome:
    """Run every asset (and check) of the tenant's partition with the in-process executor.

    With ``backfill``: only that source type's raw assets (with the window as their config)
    and every model downstream of them. The run is recorded in the local Dagster instance,
    so the UI shows it like any other.
    """
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    partitions = tenant_partitions.name or "tenant"
    if not instance.has_dynamic_partition(partitions, tenant_id):
        instance.add_dynamic_partitions(partitions, [tenant_id])
    defs = load_definitions()
    # The full event log is in the instance (and the UI); the terminal gets warnings and errors.
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {"pulse/trigger": "cli"}
    if backfill is None:
        job = defs.resolve_implicit_global_asset_job_def()
    else:
        raw = dg.AssetSelection.key_prefixes(["raw", backfill.source_type])
        rebuilt = raw | raw.downstream()
        # The models downstream also read other tools' staging views (the unified models union
        # every tracker): build every dbt parent too, so a first backfill on a fresh warehouse
        # finds them. Other sources are not loaded: raw assets outside this one stay out.
        everything_needed = rebuilt | (rebuilt.upstream() - dg.AssetSelection.key_prefixes(["raw"]))
        job = dg.define_asset_job(f"backfill_{backfill.source_type}", selection=everything_needed).resolve(
            asset_graph=defs.resolve_asset_graph()
        )
        op_config = {
            key: value
            for key, value in {
                "source": backfill.source_name,
                "start": backfill.start,
                "end": backfill.end,
            }.items()
            if value is not None
        }
        run_config["ops"] = {backfill.source_type: {"config": op_config}}
        tags |= {"pulse/backfill": f"{backfill.source_type}:{backfill.start or ''}..{backfill.end or ''}"}
    result = job.execute_in_process(
        partition_key=tenant_id,
        instance=instance,
        raise_on_error=False,
        tags=tags,
        run_config=run_config,
    )
    failed = [event.step_key for event in result.all_events if event.is_step_failure and event.step_key]
    error = None
    if not result.success:
        messages = [
            event.step_failure_data.error.message.strip()
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        ]
        error = "\n".join(messages) or "the run failed; see the Dagster UI"
    return SyncOutcome(tenant_id, result.run_id, result.success, failed, error)
