"""Partitions shared by every tenant-scoped asset."""

from __future__ import annotations

import dagster as dg

#: One partition per tenant slug; kept in step with control.tenants by the tenancy sensor.
tenant_partitions = dg.DynamicPartitionsDefinition(name="tenant")

#: The tag Dagster puts on a run of one partition.
PARTITION_TAG = "dagster/partition"


def follow_up_request(run: dg.DagsterRun, prefix: str) -> dg.RunRequest | dg.SkipReason:
    """A run of the same tenant partition after ``run`` (one per run: the run key names it)."""
    tenant = run.tags.get(PARTITION_TAG)
    if not tenant:
        return dg.SkipReason(f"run {run.run_id} has no tenant partition")
    return dg.RunRequest(partition_key=tenant, run_key=f"{prefix}:{run.run_id}")


def materialized_partitions(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, after: int | None
) -> tuple[set[str], int | None]:
    """Tenant partitions of ``asset_key`` materialized after storage id ``after``; the newest id."""
    tenants: set[str] = set()
    newest = after
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, after_storage_id=after), limit=500, cursor=cursor, ascending=True
        )
        for record in result.records:
            if record.partition_key:
                tenants.add(record.partition_key)
            newest = max(newest or 0, record.storage_id)
        if not result.has_more:
            return tenants, newest
        cursor = result.cursor
