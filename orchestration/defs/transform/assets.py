"""dbt models as assets, partitioned by tenant like the raw tables they read.

The models run in several steps, one ``@dbt_assets`` each, cut at the marts a blocking
Great Expectations check guards (orchestration/lib/dbt_steps.py says why and how), so that a
mart failing its check with ERROR severity stops every model built from it in that run:
``dbt_models`` (staging, intermediate, seeds and every mart built from no checked mart), then
e.g. ``dbt_models_after_fct_agent_runs`` (the usage, ranking and budget marts).

Every step is a ``dbt build`` of one tenant's partition with the data tests of its models;
unit tests are left to CI (tests/integration/test_dbt_unit_tests.py runs them all). The tests
that a constraint of their table stands for (pulse/enforced_tests.py) are not dbt nodes of the
build: after it, one catalog query answers every one of them on the models it built.
"""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from orchestration.defs.quality.factory import blocking_marts
from orchestration.lib.dbt import dbt_project
from orchestration.lib.dbt_steps import DbtStep, plan_dbt_steps
from orchestration.lib.dbt_targets import prune_before_step
from orchestration.lib.partitions import tenant_partitions
from orchestration.lib.resources import PulseWarehouse
from orchestration.lib.translators import PulseDbtTranslator
from pulse.db import database_url
from pulse.dbt import export_dbt_env
from pulse.enforced_tests import verify

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
        if (note := prune_before_step()) is not None:
            level, message = note
            (context.log.warning if level == "warning" else context.log.info)(message)
        built: set[dg.AssetKey] = set()
        failure: DagsterDbtCliRuntimeError | None = None
        try:
            for event in dbt.cli(step.build_args(), context=context).stream():
                if isinstance(event, dg.Output):
                    built.add(context.asset_key_for_output(event.output_name))
                elif isinstance(event, dg.AssetMaterialization):
                    built.add(event.asset_key)
                yield event
        except DagsterDbtCliRuntimeError as error:
            failure = error  # the models built before it still get their checks
        results = list(enforced_check_results(step, context, built, warehouse))
        yield from results
        if failure is not None:
            raise failure
        # as a failed error-severity dbt test fails `dbt build`: the steps reading it do not run
        raise_on_failed_checks(results)

    return _models


def enforced_check_results(
    step: DbtStep, context: dg.AssetExecutionContext, built: set[dg.AssetKey], warehouse: PulseWarehouse
) -> Iterator[dg.AssetCheckResult]:
    """The asset checks of the step's enforced tests on the models this run built (and that the
    run selected), answered from the catalog: passed when the test's constraint is in place."""
    selected = context.selected_asset_check_keys
    wanted = {}
    for test in step.enforced:
        key = dg.AssetCheckKey(TRANSLATOR.get_asset_key(MANIFEST["nodes"][test.model_id]), test.name)
        if key.asset_key in built and key in selected:
            wanted[test] = key
    if not wanted:
        return
    with psycopg.connect(database_url(warehouse.settings())) as connection:
        verdicts = verify(connection, wanted)
    for verdict in verdicts:
        key = wanted[verdict.test]
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.message,
            metadata={"enforced_by": verdict.test.constraint},
        )


def raise_on_failed_checks(results: list[dg.AssetCheckResult]) -> None:
    """Fail the step when an enforced test failed, naming each one and what to do."""
    failed = [result.description or "" for result in results if not result.passed]
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} data test(s) whose constraint is missing:\n" + "\n".join(failed),
        )


#: Every dbt model, seed and data test, in the steps they run in.
dbt_models: list[dg.AssetsDefinition] = [dbt_step_assets(step) for step in STEPS]
