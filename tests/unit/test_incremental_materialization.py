"""Pulse's incremental materialization (dbt_project/macros/incremental_materialization.sql) is
dbt's own, statement for statement, but for the one step it leaves out: widening sized character
columns before each write. When dbt's changes (an upgrade), this fails, so that the copy follows."""

from __future__ import annotations

import re
from pathlib import Path

import dbt.include.global_project

from pulse.dbt import DBT_PROJECT_DIR

DBT_OWN = (
    Path(dbt.include.global_project.__file__).parent / "macros/materializations/models/incremental/incremental.sql"
)
PULSE_OWN = DBT_PROJECT_DIR / "macros/incremental_materialization.sql"
LEFT_OUT = """
    {% set contract_config = config.get('contract') %}
    {% if not contract_config or not contract_config.enforced %}
      {% do adapter.expand_target_column_types(
               from_relation=temp_relation,
               to_relation=target_relation) %}
    {% endif %}
"""


def statements(jinja: str) -> str:
    """The template without comments, whitespace control or layout."""
    jinja = re.sub(r"\{#.*?#\}", "", jinja, flags=re.S)
    jinja = re.sub(r"--[^\n]*", "", jinja)
    jinja = jinja.replace("{%-", "{%").replace("-%}", "%}")
    return " ".join(jinja.split())


def test_the_copy_is_dbts_materialization_but_for_the_widening() -> None:
    dbt_own = DBT_OWN.read_text()
    assert statements(LEFT_OUT) in statements(dbt_own), "dbt's widening step is not where it was"
    expected = (
        statements(dbt_own)
        .replace(statements(LEFT_OUT), " ")
        .replace("{% materialization incremental, default %}", "{% materialization incremental, adapter='postgres' %}")
    )
    assert statements(PULSE_OWN.read_text()) == " ".join(expected.split())
