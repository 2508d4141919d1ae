"""dbt models as assets, partitioned by tenant like the raw tables they read.

The models run in several steps, one ``@dbt_assets`` each, cut at the marts a blocking
Great Expectations check guards (orchestration/lib/dbt_steps.py says why and how), so that a
mart failing its check with ERROR severity stops every model built from it in that run:
``dbt_models`` (staging, intermediate, seeds and every mart built from no checked mart), then
e.g. ``dbt_models_after_fct_agent_runs`` (the usage, ranking and budget marts).

Every step is a ``dbt build`` of one tenant's partition with the data tests of its models;
unit tests are left to CI (tests/integration/test_dbt_unit_tests.py runs them all).
"""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.quality.factory import blocking_marts
from orchestration.lib.dbt import dbt_project
from orchestration.lib.dbt_steps import DbtStep, plan_dbt_steps
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.translators import PulseDbtTranslator
from pulse.dbt import export_dbt_env

TRANSLATOR = PulseDbtTranslator()
MANIFEST: dict[str, Any] = json.loads(dbt_project.manifest_path.read_text())
STEPS = plan_dbt_steps(MANIFEST, TRANSLATOR, blocking_marts())


def dbt_step_assets(step: DbtStep) -> dg.AssetsDefinition:
    """The assets of one step: ``dbt build`` of its models (or the subset a run selects)."""

    @dbt_assets(
        manifest=MANIFEST,
        project=dbt_project,
        select=step.select,
        name=step.name,
        dagster_dbt_translator=TRANSLATOR,
        partitions_def=tenant_partitions,
        pool="dbt",
    )
    def _models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: PulseWarehouse) -> Iterator[Any]:
        """`dbt build` (models and their data tests, no unit tests) of one tenant's partition."""
        export_dbt_env(warehouse.settings(), tenant_id=context.partition_key)
        yield from dbt.cli(step.build_args(), context=context).stream()

    return _models


#: Every dbt model, seed and data test, in the steps they run in.
dbt_models: list[dg.AssetsDefinition] = [dbt_step_assets(step) for step in STEPS]
