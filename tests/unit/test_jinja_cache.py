"""Compiled Jinja templates kept on disk (pulse/jinja_cache.py): the same output as compiling
anew, never another environment's code, nothing kept of a template that does not compile."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from pulse import jinja_cache


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for a cache installed in this process for one test; jinja's own compile after it."""
    yield tmp_path / "jinja"
    jinja_cache.uninstall()


def entries(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if not name.startswith("."))


def test_a_template_compiled_once_is_read_back_by_the_next_process(cache_dir: Path) -> None:
    first = jinja_cache.install(cache_dir)
    source = "{% for n in numbers %}{{ n * 2 }},{% endfor %}"
    assert jinja2.Environment().from_string(source).render(numbers=[1, 2, 3]) == "2,4,6,"
    assert (first.misses, first.hits) == (1, 0)
    assert len(entries(cache_dir)) == 1
    # a new process: an empty memory, the same folder
    jinja_cache.uninstall()
    second = jinja_cache.install(cache_dir)
    assert second is not first
    assert jinja2.Environment().from_string(source).render(numbers=[4]) == "8,"
    assert (second.misses, second.hits) == (0, 1)
    assert len(entries(cache_dir)) == 1


def test_environments_whose_filters_differ_never_share_code(cache_dir: Path) -> None:
    """The code compiled for a filter that takes the context passes it; the other's does not:
    keyed on the source alone, the second environment would run the first's code and fail."""
    cache = jinja_cache.install(cache_dir)
    source = "{{ price | with_tax }}"
    plain = jinja2.Environment()
    plain.filters["with_tax"] = lambda price: price + 1

    @jinja2.pass_context
    def with_tax(context: jinja2.runtime.Context, price: int) -> int:
        return int(price + context["tax"])

    contextual = jinja2.Environment()
    contextual.filters["with_tax"] = with_tax
    assert plain.from_string(source).render(price=10) == "11"
    assert contextual.from_string(source).render(price=10, tax=5) == "15"
    assert plain.from_string(source).render(price=20) == "21"
    assert (cache.misses, cache.hits) == (2, 1)
    assert len(entries(cache_dir)) == 2


def test_syntax_and_options_are_part_of_the_key(cache_dir: Path) -> None:
    cache = jinja_cache.install(cache_dir)
    source = "  {% if true %}\n  yes\n  {% endif %}\n"
    assert jinja2.Environment().from_string(source).render() == "  \n  yes\n  "
    assert jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(source).render() == "  yes\n"
    assert cache.misses == 2


def test_a_template_that_does_not_compile_raises_and_leaves_nothing(cache_dir: Path) -> None:
    jinja_cache.install(cache_dir)
    with pytest.raises(jinja2.TemplateSyntaxError, match="endfor"):
        jinja2.Environment().from_string("{% for x in y %}{{ x }}")
    assert entries(cache_dir) == []


def test_a_torn_entry_is_compiled_again_and_rewritten(cache_dir: Path) -> None:
    cache = jinja_cache.install(cache_dir)
    source = "{{ 6 * 7 }}"
    jinja2.Environment().from_string(source)
    (entry,) = entries(cache_dir)
    (cache_dir / entry).write_bytes(b"\x00not marshal")
    cache.memory.clear()
    assert jinja2.Environment().from_string(source).render() == "42"
    assert cache.misses == 2
    assert jinja_cache.CompileCache(cache_dir).get(entry) is not None


def test_a_folder_others_may_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match="chmod 700"):
        jinja_cache.CompileCache(shared)


def test_filters_of_one_name_and_calling_convention_but_other_bodies_never_share_code(cache_dir: Path) -> None:
    """Jinja calls a filter with constant arguments while compiling and keeps the result in the
    code: the filter's body is part of what the code depends on."""
    jinja_cache.install(cache_dir)
    source = '{{ "x" | tag }}'
    first = jinja2.Environment()
    first.filters["tag"] = lambda value: f"{value}-A"
    second = jinja2.Environment()
    second.filters["tag"] = lambda value: f"{value}-B"
    assert first.from_string(source).render() == "x-A"
    assert second.from_string(source).render() == "x-B"


def test_finalize_is_part_of_the_key(cache_dir: Path) -> None:
    jinja_cache.install(cache_dir)
    source = "{{ nothing }}|{{ none }}"
    assert jinja2.Environment().from_string(source).render() == "|None"
    finalizing = jinja2.Environment(finalize=lambda value: "F" if value is None else value)
    assert finalizing.from_string(source).render() == "|F"


KEY_OF_DBT_TEMPLATE = """
import dbt_common.clients.jinja as dbt_jinja
from pulse.jinja_cache import compile_key
print(compile_key(dbt_jinja.get_environment(), "{{ 'x' | upper }}", None, None, False))
"""


def test_the_key_of_a_dbt_template_is_the_same_in_every_process() -> None:
    """Each process hashes strings with its own seed and places objects at its own addresses:
    a key that read either (a set's order, a nested function's repr) would never be found by
    the next dbt process (the cache's first version missed so, every build)."""
    keys = {
        subprocess.run(
            [sys.executable, "-c", KEY_OF_DBT_TEMPLATE],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in (1, 2, 3)
    }
    assert len(keys) == 1 and len(next(iter(keys))) == 64, keys
