"""dbt models as assets, partitioned by tenant like the raw tables they read."""

import json
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.lib.dbt import dbt_project
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.translators import PulseDbtTranslator
from pulse.dbt import export_dbt_env


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=PulseDbtTranslator(),
    partitions_def=tenant_partitions,
    pool="dbt",
)
def pulse_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: PulseWarehouse) -> Iterator[Any]:
    """`dbt build` (models, unit tests, data tests) for one tenant's partition of the marts."""
    export_dbt_env(warehouse.settings())
    variables = {"tenant_id": context.partition_key}
    yield from dbt.cli(["build", "--vars", json.dumps(variables)], context=context).stream()
