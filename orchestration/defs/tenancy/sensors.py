"""Keep the tenant partitions in step with control.tenants."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import text

from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse


def partition_changes(active: set[str], existing: set[str]) -> tuple[list[str], list[str]]:
    """Partitions to add (active tenants without one) and to delete (no longer active)."""
    return sorted(active - existing), sorted(existing - active)


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def tenant_partitions_sensor(context: dg.SensorEvaluationContext, warehouse: PulseWarehouse) -> dg.SensorResult:
    """Add a partition for each new active tenant and remove those of deactivated tenants."""
    with warehouse.engine().connect() as conn:
        active: set[str] = set(
            conn.execute(text("select slug from control.tenants where is_active and deleted_at is null")).scalars()
        )
    existing = set(context.instance.get_dynamic_partitions(tenant_partitions.name or "tenant"))
    to_add, to_delete = partition_changes(active, existing)
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if to_add:
        requests.append(tenant_partitions.build_add_request(to_add))
    if to_delete:
        requests.append(tenant_partitions.build_delete_request(to_delete))
    return dg.SensorResult(
        dynamic_partitions_requests=requests,
        skip_reason=None if requests else "tenant partitions already match control.tenants",
    )
