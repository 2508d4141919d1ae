"""The dbt models in steps cut at the checked marts (orchestration/lib/dbt_steps.py).

A made-up project first, where every rule shows; then the real manifest, checked against
its own graph (child_map) and dbt's own selection of each step's ``--select``/``--exclude``.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dbt.utils import select_unique_ids

from orchestration.defs.quality.factory import blocking_marts
from orchestration.lib.dbt_steps import DbtStep, plan_dbt_steps
from orchestration.lib.translators import PulseDbtTranslator
from pulse.enforced_tests import enforced_tests
from pulse.quality import ERROR, WARN, Between, Fresh, Suite


def _node(
    name: str, layer: str, *parents: str, resource_type: str = "model", materialized: str = "table"
) -> dict[str, Any]:
    return {
        "unique_id": f"{resource_type}.pulse.{name}",
        "name": name,
        "resource_type": resource_type,
        "fqn": ["pulse", layer, name],
        "config": {"schema": layer, "materialized": materialized},
        "depends_on": {"nodes": [f"{'seed' if p == 'prices' else 'model'}.pulse.{p}" for p in parents]},
    }


def _test(name: str, *parents: str) -> dict[str, Any]:
    return _node(name, "marts", *parents, resource_type="test", materialized="test")


NODES = [
    _node("prices", "seeds", resource_type="seed"),
    _node("stg_runs", "staging", materialized="view"),
    _node("stg_items", "staging", materialized="view"),
    _node("int_runs", "intermediate", "stg_runs", "prices"),
    _node("fct_runs", "marts", "int_runs"),  # checked
    _node("fct_items", "marts", "stg_items"),  # checked
    _node("dim_people", "marts", "stg_items"),
    _node("fct_usage", "marts", "fct_runs"),  # checked
    _node("fct_usage_weekly", "marts", "fct_usage"),
    _node("fct_flags", "marts", "fct_items", "dim_people"),
    _node("fct_health", "marts", "fct_runs", "fct_flags"),
    _node("eph_runs", "marts", "fct_runs", materialized="ephemeral"),
    _node("fct_top_users", "marts", "eph_runs"),
    _test("not_null_fct_flags", "fct_flags"),
    _test("relationships_fct_flags_dim_people", "fct_flags", "dim_people"),
    _test("relationships_fct_health_fct_usage", "fct_health", "fct_usage"),
]
MANIFEST = {"nodes": {node["unique_id"]: node for node in NODES}}
CHECKED = {dg.AssetKey(["marts", name]) for name in ("fct_runs", "fct_items", "fct_usage", "not_in_the_manifest")}


def test_models_are_grouped_by_the_checked_marts_they_are_built_from() -> None:
    steps = plan_dbt_steps(MANIFEST, PulseDbtTranslator(), CHECKED)

    assert steps == [
        DbtStep(
            "dbt_models",
            (),
            (
                "pulse.intermediate.int_runs",
                "pulse.marts.dim_people",
                "pulse.marts.fct_items",
                "pulse.marts.fct_runs",
                "pulse.seeds.prices",
                "pulse.staging.stg_items",
                "pulse.staging.stg_runs",
            ),
            # Reads fct_flags too, which a later step builds: it runs there.
            ("pulse.marts.relationships_fct_flags_dim_people",),
        ),
        DbtStep("dbt_models_after_fct_items", ("fct_items",), ("pulse.marts.fct_flags",)),
        # The ephemeral model is inlined by dbt: not selected, but what is built from it waits too.
        DbtStep(
            "dbt_models_after_fct_runs",
            ("fct_runs",),
            ("pulse.marts.fct_top_users", "pulse.marts.fct_usage"),
            ("pulse.marts.relationships_fct_health_fct_usage",),
        ),
        DbtStep("dbt_models_after_fct_items_and_fct_runs", ("fct_items", "fct_runs"), ("pulse.marts.fct_health",)),
        DbtStep(
            "dbt_models_after_fct_runs_and_fct_usage", ("fct_runs", "fct_usage"), ("pulse.marts.fct_usage_weekly",)
        ),
    ]


def test_without_checked_marts_every_model_is_one_step() -> None:
    [step] = plan_dbt_steps(MANIFEST, PulseDbtTranslator(), set())

    assert (step.name, step.after, step.deferred_tests) == ("dbt_models", (), ())
    assert len(step.models) == len(NODES) - 3 - 1  # not the tests, not the ephemeral model


def test_a_step_builds_without_unit_tests_or_the_tests_it_defers() -> None:
    step = DbtStep("dbt_models", (), ("pulse.marts.fct_runs",), ("pulse.marts.relationships_a_b",))

    assert step.build_args() == [
        "build",
        "--exclude",
        "test_type:unit pulse.marts.relationships_a_b",
    ]
    assert step.select == "pulse.marts.fct_runs"


def test_only_suites_with_an_error_expectation_cut_the_steps() -> None:
    suites = (
        Suite(model="fct_a", description="", expectations=(Between(ERROR, "x", minimum=0),)),
        Suite(model="fct_b", description="", expectations=(Fresh(WARN, "at", max_age=timedelta(days=1)),)),
    )

    assert blocking_marts(suites) == {dg.AssetKey(["marts", "fct_a"])}


# The real project.


def _real() -> tuple[dict[str, Any], list[DbtStep], list[dg.AssetsDefinition]]:
    from orchestration.defs.transform.assets import MANIFEST, STEPS, dbt_models

    return MANIFEST, STEPS, dbt_models


def _descendants(manifest: dict[str, Any], unique_id: str) -> set[str]:
    found: set[str] = set()
    todo = [unique_id]
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_every_model_downstream_of_a_checked_mart_runs_in_a_later_step_than_it() -> None:
    manifest, steps, _ = _real()
    step_of = {model: step for step in steps for model in step.models}
    built = {
        uid: ".".join(node["fqn"])
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot") and node["config"]["materialized"] != "ephemeral"
    }
    assert sorted(step_of) == sorted(built.values())  # each model in exactly one step
    checked = {dg.AssetKey(["marts", uid.split(".")[-1]]) for uid in built} & blocking_marts()
    assert {key.path[1] for key in checked} >= {"fct_agent_runs", "fct_work_item_compliance"}
    for key in checked:
        mart = f"model.pulse.{key.path[1]}"
        downstream = _descendants(manifest, mart)
        for uid, selector in built.items():
            assert (key.path[1] in step_of[selector].after) == (uid in downstream), (key, uid)
    assert step_of["pulse.marts.agents.fct_agent_runs"].name == "dbt_models"
    assert step_of["pulse.marts.agents.fct_budget_utilization"].name == "dbt_models_after_fct_agent_runs"
    assert step_of["pulse.marts.compliance.fct_compliance_flags"].name == "dbt_models_after_fct_work_item_compliance"
    assert (
        step_of["pulse.marts.accounts.fct_account_health_daily"].name
        == "dbt_models_after_fct_agent_runs_and_fct_work_item_compliance"
    )


def test_dbt_selects_each_model_and_data_test_in_exactly_one_step_and_no_unit_test() -> None:
    """What `dbt build --select <step> --exclude <step>` picks (dbt's selector, eager indirect selection)."""
    manifest, steps, _ = _real()
    selected = {
        step.name: select_unique_ids(
            select=step.select, exclude=step.exclude, selector="", project=None, manifest_json=manifest
        )
        for step in steps
    }
    counts = Counter(uid for ids in selected.values() for uid in ids)
    enforced = {test.unique_id: step.name for step in steps for test in step.enforced}
    expected = {
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot", "test")
        and node["config"].get("materialized") != "ephemeral"
    }
    # the tests a constraint stands for are no dbt node of any step: each step answers its own
    # from the catalog, in the step that builds their model
    assert len(enforced) == len(enforced_tests(manifest)) > 100
    assert set(counts) == expected - set(enforced)
    step_of_model = {uid: name for name, ids in selected.items() for uid in ids}
    assert all(step_of_model[test.model_id] == enforced[test.unique_id] for test in enforced_tests(manifest))
    assert [uid for uid, count in counts.items() if count > 1] == []
    assert not any(uid.startswith("unit_test.") for uid in counts)
    # A test runs where the last model it reads is built: relationships from fct_sprints to dim_sprints.
    step_of = {uid: name for name, ids in selected.items() for uid in ids}
    [sprints_to_dims] = [
        uid for uid in manifest["nodes"] if uid.startswith("test.pulse.relationships_fct_sprints_sprint_uid__")
    ]
    assert step_of[sprints_to_dims] == step_of["model.pulse.fct_sprints"] != step_of["model.pulse.dim_sprints"]


def test_each_step_is_a_tenant_partitioned_dbt_asset_in_the_dbt_pool_with_the_translators_keys() -> None:
    manifest, steps, assets = _real()
    translator = PulseDbtTranslator()

    assert [asset.op.name for asset in assets] == [step.name for step in steps]
    for step, asset in zip(steps, assets, strict=True):
        assert asset.op.pool == "dbt"
        assert asset.partitions_def is not None and asset.partitions_def.name == "tenant"
        expected = {
            translator.get_asset_key(node)
            for node in manifest["nodes"].values()
            if ".".join(node["fqn"]) in step.models
        }
        assert set(asset.keys) == expected
    keys = [key for asset in assets for key in asset.keys]
    assert len(keys) == len(set(keys))
    assert (
        dg.AssetKey(["marts", "fct_pull_requests"]) in keys and dg.AssetKey(["staging", "stg_github__reviews"]) in keys
    )
