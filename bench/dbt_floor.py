"""Benchmark: what dbt itself costs to run the marts' build, whatever the SQL does.

bench/warehouse_scale.py times ``dbt build`` of the marts and every model they are built from,
in full and a day later. A build costs dbt's own start, and each of its nodes dbt's own work
(compiling, its statements' round trips, its bookkeeping) before any of the models' SQL does
anything. This benchmark measures that floor on this machine:

1. it lists the nodes of warehouse_scale's build (the same selection and exclusions: ``dbt
   ls`` on this checkout's project) with their parents and materializations;
2. it writes a dbt project of the same graph in a temporary folder: one model per model, of the
   same materialization (a view, or an incremental table with dbt's own delete+insert), each
   selecting one constant row and reading each of its parents with ``where false``; a seed of
   one row per seed; one test per test, on the same models and seeds (a relationships test reads
   its second model too), returning no row; one hook per hook of the project;
3. on a database of its own, in the embedded PostgreSQL it starts, it builds that project in
   full once, then again ``--repeat`` times with nothing new, as warehouse_scale's builds run
   (``dbt build --quiet``, the project's profile and threads) and times each from the
   process's start to its end.

The median of those builds is the least a build of this graph takes here, with no data at
all. Against warehouse_scale's full build it bounds the day's speed-up from above more tightly
than warehouse_scale's own build with nothing new does (which adds the models' look for
changes): ``ratio_bound`` is the full build's seconds over this floor.

    .venv/bin/python bench/dbt_floor.py [--repeat 5] [--results dbt_floor.json]

Figures go to bench/results/dbt_floor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warehouse_scale import MARTS, RESULTS, free_port, record

from pulse.dbt import DBT_PROJECT_DIR

#: The one generic test of the synthetic project: no failing row, after reading its model (and
#: the second model of a relationships test).
GENERIC_TEST = """{% test trivial(model, number, to=none) %}
    select 1 as failure from {{ model }} where false
    {%- if to %} union all select 1 from {{ to }} where false{% endif %}
{% endtest %}
"""


@dataclass(frozen=True)
class Node:
    """A node of the build: a model (its materialization and parents), a seed, or a test (the
    models and seeds it reads)."""

    name: str
    kind: str  # "model", "seed" or "test"
    materialized: str
    parents: tuple[str, ...]


def build_nodes(manifest: dict[str, Any], selected: Iterable[str]) -> list[Node]:
    """The selected nodes (unique ids) of a manifest, with their parents among the models and seeds."""
    nodes = []
    for unique_id in selected:
        node = manifest["nodes"][unique_id]
        parents = tuple(
            manifest["nodes"][parent]["name"]
            for parent in node["depends_on"].get("nodes", [])
            if parent.startswith(("model.", "seed."))
        )
        kind = node["resource_type"]
        materialized = node["config"].get("materialized", "") if kind == "model" else kind
        nodes.append(Node(node["name"], kind, materialized, parents))
    return nodes


def synthetic_project(nodes: list[Node], hooks: dict[str, int], folder: Path) -> dict[str, int]:
    """Write a dbt project of the same graph as ``nodes`` into ``folder``; its shape."""
    models = [node for node in nodes if node.kind == "model"]
    seeds = [node for node in nodes if node.kind == "seed"]
    tests = [node for node in nodes if node.kind == "test"]
    names = {node.name for node in models + seeds}
    (folder / "models").mkdir(parents=True)
    (folder / "macros").mkdir()
    (folder / "seeds").mkdir()
    for seed in seeds:
        (folder / "seeds" / f"{seed.name}.csv").write_text("id\n1\n")
    start = "\n".join(f'  - "select {n}"' for n in range(hooks.get("on-run-start", 0)))
    end = "\n".join(f'  - "select {n}"' for n in range(hooks.get("on-run-end", 0)))
    (folder / "dbt_project.yml").write_text(
        "name: floor\nversion: '0.1.0'\nconfig-version: 2\nprofile: pulse\n"
        "model-paths: [models]\nmacro-paths: [macros]\nseed-paths: [seeds]\n"
        "models:\n  floor:\n    +incremental_strategy: delete+insert\n    +unique_key: id\n"
        + (f"on-run-start:\n{start}\n" if start else "")
        + (f"on-run-end:\n{end}\n" if end else "")
    )
    (folder / "macros" / "trivial.sql").write_text(GENERIC_TEST)
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in depth:
            node = next(node for node in models + seeds if node.name == name)
            depth[name] = 1 + max((level(parent) for parent in node.parents if parent in names), default=0)
        return depth[name]

    for node in models:
        materialized = "view" if node.materialized == "view" else "incremental"
        reads = "".join(
            f"\nunion all select id from {{{{ ref('{parent}') }}}} where false"
            for parent in node.parents
            if parent in names
        )
        (folder / "models" / f"{node.name}.sql").write_text(
            f"{{{{ config(materialized='{materialized}') }}}}\nselect 1 as id{reads}\n"
        )
    tested: dict[str, list[dict[str, Any]]] = {}
    for number, node in enumerate(tests):
        on = [parent for parent in node.parents if parent in names]
        if not on:
            continue
        arguments: dict[str, Any] = {"number": number}
        if len(on) > 1:
            arguments["to"] = f"ref('{on[1]}')"
        tested.setdefault(on[0], []).append({"trivial": {"arguments": arguments}})
    seed_names = {seed.name for seed in seeds}
    schema = {
        "version": 2,
        "models": [{"name": name, "data_tests": checks} for name, checks in tested.items() if name not in seed_names],
        "seeds": [{"name": name, "data_tests": checks} for name, checks in tested.items() if name in seed_names],
    }
    (folder / "models" / "schema.yml").write_text(json.dumps(schema, indent=2))
    return {
        "models": len(models),
        "views": sum(node.materialized == "view" for node in models),
        "seeds": len(seeds),
        "tests": sum(len(checks) for checks in tested.values()),
        "depth": max((level(node.name) for node in models), default=0),
    }


def listed_build(env: dict[str, str], target: Path) -> tuple[list[Node], dict[str, int]]:
    """The nodes warehouse_scale's build runs (its selection and exclusions) and the project's
    hooks, from ``dbt ls`` and the manifest of this checkout's project."""
    from pulse.enforced_tests import exclusions

    dbt = str(Path(sys.executable).with_name("dbt"))
    project = ["--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target)]
    subprocess.run([dbt, "parse", *project, "--quiet"], env=env, check=True)
    manifest = json.loads((target / "manifest.json").read_text())
    listed = subprocess.run(
        [
            dbt,
            "ls",
            *project,
            "--quiet",
            "--resource-type",
            "model",
            "--resource-type",
            "seed",
            "--resource-type",
            "test",
            "--select",
            *(f"+{mart}" for mart in MARTS),
            "--exclude",
            "test_type:unit",
            *exclusions(manifest),
            "--output",
            "json",
            "--output-keys",
            "unique_id",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    selected = [json.loads(line)["unique_id"] for line in listed.splitlines() if line.startswith("{")]
    operations = [node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "operation"]
    hooks = {hook: sum(f"-{hook}-" in name for name in operations) for hook in ("on-run-start", "on-run-end")}
    return build_nodes(manifest, selected), hooks


def timed_build(env: dict[str, str], project: Path, *extra: str) -> dict[str, float]:
    dbt = str(Path(sys.executable).with_name("dbt"))
    started = time.perf_counter()
    subprocess.run([dbt, "build", "--project-dir", str(project), "--quiet", *extra], env=env, check=True)
    seconds = time.perf_counter() - started
    elapsed = json.loads((project / "target" / "run_results.json").read_text())["elapsed_time"]
    return {"seconds": round(seconds, 2), "dbt_elapsed": round(elapsed, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="builds with nothing new to time")
    parser.add_argument("--results", default="dbt_floor.json")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pulse-floor-"))
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": str(free_port())})
    os.environ.pop("PULSE_DATABASE_URL", None)

    import psycopg

    from pulse.db import database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.dbt import dbt_env
    from pulse.settings import get_settings

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    try:
        url = database_url(settings)
        with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
            connection.execute("create database dbt_floor")
        env = {**os.environ, **dbt_env(settings)}
        nodes, hooks = listed_build(env, home / "pulse-target")
        project = home / "floor"
        shape = synthetic_project(nodes, hooks, project)
        env["PULSE_DBT_DBNAME"] = "dbt_floor"
        subprocess.run(
            [str(Path(sys.executable).with_name("dbt")), "parse", "--project-dir", str(project), "--quiet"],
            env=env,
            check=True,
        )
        full = timed_build(env, project, "--full-refresh")
        runs = [timed_build(env, project) for _ in range(args.repeat)]
    finally:
        cluster.stop()
    seconds = [run["seconds"] for run in runs]
    figures: dict[str, Any] = {
        "benchmark": "dbt_floor",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "threads": int(env.get("PULSE_DBT_THREADS", "4")),
        "graph": {**shape, **hooks},
        "full_build": full,
        "nothing_new_runs": runs,
        "floor_seconds": statistics.median(seconds),
    }
    scale = RESULTS / "warehouse_scale.json"
    if scale.exists():
        recorded = json.loads(scale.read_text())
        full_seconds = recorded["full_build"]["seconds"]
        figures["warehouse_scale"] = {
            "measured_at": recorded["measured_at"],
            "full_build_seconds": full_seconds,
            "incremental_build_seconds": recorded["incremental_build"]["seconds"],
            "no_change_build_seconds": recorded["no_change_build"]["seconds"],
            "ten_times_budget_seconds": round(full_seconds / 10, 2),
            "ratio_bound": round(full_seconds / figures["floor_seconds"], 1),
        }
    record(figures, args.results)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
