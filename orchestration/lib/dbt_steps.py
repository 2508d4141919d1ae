"""Cut the dbt project into steps at the marts that a blocking quality check guards.

Dagster stops what is downstream of a failed blocking asset check only if it runs in a later
*step* of the run: a step is all or nothing, and a model built in the same ``dbt build`` as its
checked parent is built before the check runs. So the models are grouped by **the set of
checked marts they are built from** (every checked mart upstream of them, at any distance):

- the models built from no checked mart (staging, intermediate, the first marts, seeds)
  are one step, ``dbt_models``;
- the models built from ``fct_agent_runs`` (and no other checked mart) are one step,
  ``dbt_models_after_fct_agent_runs``; those built from ``fct_agent_runs`` and
  ``fct_work_item_compliance`` another, and so on.

Each step is downstream of the checks of the marts in its name, so when one of them fails
with ERROR severity Dagster skips exactly the steps whose set holds that mart: every model
downstream of it, and nothing else (a failed agent-runs check does not stop the compliance
marts). Steps follow the manifest and the suites: adding a checked mart, or a mart built
from one, moves models between steps without a line changed here. A step's set always
grows along an edge, so ordering steps by the size of their set is an order that runs
every step after the steps it reads.

Grouping by depth (all marts one checked mart away in one step, and so on) would make fewer
steps, but a failed check would then also stop unrelated marts at the same depth.

Data tests run in the step that builds the last of the models they read (a relationships
test of ``fct_sprints`` against ``dim_sprints`` runs with ``fct_sprints``, never before it is
rebuilt); earlier steps exclude them explicitly, because dbt's default (eager) indirect
selection would pick them up there too. Unit tests are excluded from every step: CI runs them.
The tests a constraint of their table stands for (pulse/enforced_tests.py) are excluded too:
the step answers them from the catalog, in one query, after its ``dbt build``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator

from pulse.enforced_tests import EnforcedTest, enforced_tests, exclusions

#: Manifest nodes a ``dbt build`` materializes (tests are not among them).
BUILT_RESOURCE_TYPES = frozenset({"model", "seed", "snapshot"})

#: dbt's selector of unit tests (``unit_tests:`` in the models' YAML).
UNIT_TESTS = "test_type:unit"

#: The name of the step built from no checked mart.
FIRST_STEP = "dbt_models"


@dataclass(frozen=True)
class DbtStep:
    """One ``dbt build`` of a run: the models built from the same checked marts."""

    name: str
    after: tuple[str, ...]
    """The checked marts (model names) every model of the step is built from; empty for the first."""
    models: tuple[str, ...]
    """dbt selectors (fully qualified names) of the models and seeds the step builds."""
    deferred_tests: tuple[str, ...] = ()
    """Tests on the step's models that also read a model of a later step; they run there."""
    enforced: tuple[EnforcedTest, ...] = ()
    """Tests of the step's models that a constraint stands for: verified from the catalog."""
    enforced_selectors: tuple[str, ...] = ()
    """dbt selectors that leave the enforced tests out of the step (pulse.enforced_tests.exclusions)."""

    @property
    def select(self) -> str:
        return " ".join(self.models)

    @property
    def exclude(self) -> str:
        return " ".join((UNIT_TESTS, *self.deferred_tests, *self.enforced_selectors))

    def build_args(self) -> list[str]:
        """``dbt build`` of the step (dagster-dbt adds its ``--select``; the tenant partition is
        PULSE_DBT_TENANT_ID in the environment: pulse.dbt.dbt_env)."""
        return ["build", "--exclude", self.exclude]


def step_name(after: Collection[str]) -> str:
    return FIRST_STEP if not after else f"{FIRST_STEP}_after_{'_and_'.join(sorted(after))}"


def _selector(node: Mapping[str, Any]) -> str:
    """The node's fully qualified name, the selector dagster-dbt itself uses for subsets."""
    return ".".join(node["fqn"])


def plan_dbt_steps(
    manifest: Mapping[str, Any], translator: DagsterDbtTranslator, checked: Collection[dg.AssetKey]
) -> list[DbtStep]:
    """The steps of a run of every dbt model, in the order they run.

    ``checked``: the asset keys of the marts whose quality check blocks (a mart not in the
    manifest is ignored).
    """
    nodes = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] in BUILT_RESOURCE_TYPES}
    parents = {
        uid: [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes] for uid, node in nodes.items()
    }
    gates = {uid for uid, node in nodes.items() if translator.get_asset_key(node) in checked}

    # The checked marts each node is built from, parents first.
    after: dict[str, frozenset[str]] = {}
    for uid in TopologicalSorter(parents).static_order():
        found: set[str] = set()
        for parent in parents[uid]:
            found |= after[parent]
            if parent in gates:
                found.add(nodes[parent]["name"])
        after[uid] = frozenset(found)

    # A set only grows along an edge: by size, every step comes after the steps it reads.
    order = sorted(set(after.values()), key=lambda names: (len(names), sorted(names)))
    index = {names: position for position, names in enumerate(order)}
    models: list[list[str]] = [[] for _ in order]
    for uid in sorted(nodes, key=lambda uid: _selector(nodes[uid])):
        if nodes[uid].get("config", {}).get("materialized") != "ephemeral":  # not an asset; dbt inlines it
            models[index[after[uid]]].append(_selector(nodes[uid]))

    enforced: list[list[EnforcedTest]] = [[] for _ in order]
    for test in enforced_tests(manifest):
        enforced[index[after[test.model_id]]].append(test)

    deferred: list[list[str]] = [[] for _ in order]
    for test in sorted((node for node in manifest["nodes"].values() if node["resource_type"] == "test"), key=_selector):
        steps = {index[after[p]] for p in test.get("depends_on", {}).get("nodes", []) if p in after}
        for position in sorted(steps)[:-1]:  # it runs in the last of them
            deferred[position].append(_selector(test))

    return [
        DbtStep(
            step_name(names),
            tuple(sorted(names)),
            tuple(models[position]),
            tuple(deferred[position]),
            tuple(enforced[position]),
            tuple(exclusions(manifest, enforced[position])),
        )
        for position, names in enumerate(order)
        if models[position]
    ]
