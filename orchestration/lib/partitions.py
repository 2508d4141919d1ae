"""Partitions shared by every tenant-scoped asset."""

from __future__ import annotations

import dagster as dg

#: One partition per tenant slug; kept in step with control.tenants by the tenancy sensor.
tenant_partitions = dg.DynamicPartitionsDefinition(name="tenant")
