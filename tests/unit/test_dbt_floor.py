"""bench/dbt_floor.py writes a dbt project of the same graph as the marts' build: the same
models (materialization, parents), seeds, tests on the same nodes, hooks. Checked by parsing the
written project with dbt and comparing its graph with the one it was written from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pulse.dbt import DBT_PROJECT_DIR
from tests.bench_modules import import_bench_module


@pytest.fixture(scope="module")
def floor() -> ModuleType:
    return import_bench_module("dbt_floor")


def node(resource_type: str, name: str, parents: list[str] = (), materialized: str | None = None) -> dict[str, Any]:
    config = {"materialized": materialized} if materialized else {}
    return {
        "unique_id": f"{resource_type}.pulse.{name}",
        "resource_type": resource_type,
        "name": name,
        "config": config,
        "depends_on": {"nodes": list(parents), "macros": []} if resource_type != "seed" else {"macros": []},
    }


#: A small build: a seed, a view on it, a table on the view and the seed, an incremental on the
#: table; a not-null test on the view, two on the table, a relationships test between the
#: incremental and the view, a test on the seed.
MANIFEST = {
    "nodes": {
        n["unique_id"]: n
        for n in [
            node("seed", "prices"),
            node("model", "stg_items", ["seed.pulse.prices"], "view"),
            node("model", "int_items", ["model.pulse.stg_items", "seed.pulse.prices"], "table"),
            node("model", "fct_items", ["model.pulse.int_items"], "incremental"),
            node("test", "not_null_stg_items_id", ["model.pulse.stg_items"]),
            node("test", "not_null_int_items_id", ["model.pulse.int_items"]),
            node("test", "unique_int_items_id", ["model.pulse.int_items"]),
            node("test", "relationships_fct_items_item", ["model.pulse.fct_items", "model.pulse.stg_items"]),
            node("test", "not_null_prices_model", ["seed.pulse.prices"]),
        ]
    }
}


def test_the_written_project_has_the_graph_it_was_written_from(floor: ModuleType, tmp_path: Path) -> None:
    nodes = floor.build_nodes(MANIFEST, list(MANIFEST["nodes"]))
    shape = floor.synthetic_project(nodes, {"on-run-start": 1, "on-run-end": 2}, tmp_path / "floor")
    assert shape == {"models": 3, "views": 1, "seeds": 1, "tests": 5, "depth": 4}

    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = str(Path(sys.executable).with_name("dbt"))
    subprocess.run([dbt, "parse", "--project-dir", str(tmp_path / "floor"), "--quiet"], env=env, check=True)
    parsed = json.loads((tmp_path / "floor" / "target" / "manifest.json").read_text())["nodes"]

    def parents(unique_id: str) -> set[str]:
        return {parent.split(".")[-1] for parent in parsed[unique_id]["depends_on"]["nodes"]}

    assert {n["name"]: n["config"]["materialized"] for n in parsed.values() if n["resource_type"] == "model"} == {
        "stg_items": "view",
        "int_items": "incremental",
        "fct_items": "incremental",
    }
    assert parents("model.floor.stg_items") == {"prices"}
    assert parents("model.floor.int_items") == {"stg_items", "prices"}
    assert parents("model.floor.fct_items") == {"int_items"}
    tests = sorted(
        (sorted(parents(unique_id)), n["test_metadata"]["name"])
        for unique_id, n in parsed.items()
        if n["resource_type"] == "test"
    )
    assert tests == [
        (["fct_items", "stg_items"], "trivial"),
        (["int_items"], "trivial"),
        (["int_items"], "trivial"),
        (["prices"], "trivial"),
        (["stg_items"], "trivial"),
    ]
    hooks = sorted(n["name"] for n in parsed.values() if n["resource_type"] == "operation")
    assert hooks == ["floor-on-run-end-0", "floor-on-run-end-1", "floor-on-run-start-0"]
