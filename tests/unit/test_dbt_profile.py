"""bench/dbt_profile.py sorts py-spy's samples of a dbt build by what dbt was doing. Checked on a
raw profile written here, with the seconds each category must get worked out by hand."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.bench_modules import import_bench_module

#: py-spy's raw format: frames joined by ';' (each "function (file:line)"), a space, the samples.
RAW = """\
<module> (dbt:4);_find_and_load (<frozen importlib._bootstrap>:1176);<module> (dbt/cli/main.py:1) 100
<module> (dbt:8);build (dbt/cli/main.py:290);parse_manifest (dbt/parser/manifest.py:2080) 40
<module> (dbt:8);build (dbt/cli/main.py:290);NodeSelector.select_nodes (dbt/graph/selector.py:190) 30
Thread.run (threading.py:975);ModelRunner.execute (dbt/task/run.py:300);root (<template>:12) 120
Thread.run (threading.py:975);ModelRunner.execute (dbt/task/run.py:300);fire_event (dbt_common/events.py:9) 16
Thread.run (threading.py:975);Compiler.compile_node (dbt/compilation.py:560);root (<template>:3) 50
Compiler.compile_node (dbt/compilation.py:560);generate_runtime_model_context (dbt/context/providers.py:1) 24
Thread.run (threading.py:975);TestRunner.execute (dbt/task/test.py:200);add_query (dbt/adapters/sql.py:80) 20

Thread.run (threading.py:975);ModelRunner.execute (dbt/task/run.py:300);root (<template>:12) 10
Thread.run (threading.py:975);wait (threading.py:320) 4
"""


@pytest.fixture(scope="module")
def profile() -> ModuleType:
    return import_bench_module("dbt_profile")


def test_samples_are_sorted_by_what_dbt_was_doing(profile: ModuleType, tmp_path: Path) -> None:
    raw = tmp_path / "build.raw"
    raw.write_text(RAW)
    stacks = profile.read_samples(raw)
    # the same stack twice (its lines add up), a blank line skipped: 9 stacks, 414 samples
    assert len(stacks) == 9
    assert sum(stacks.values()) == 414
    # at 200 samples a second: a category's samples / 200. An event fired while a model runs
    # counts as events, a context built while compiling as contexts (their categories come first).
    assert profile.attribute(stacks, 200) == {
        "running models and hooks (materializations' Jinja, statements)": 0.65,  # 120 + 10
        "importing dbt": 0.5,  # 100
        "compiling the nodes' SQL": 0.25,  # 50
        "loading the manifest": 0.2,  # 40
        "selecting the nodes": 0.15,  # 30
        "each node's context (macros, tests' arguments)": 0.12,  # 24
        "running the tests": 0.1,  # 20
        "events (built as protobuf, logged)": 0.08,  # 16
        "other": 0.02,  # 4: a thread waiting, in none of the categories
    }
