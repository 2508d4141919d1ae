"""Every dbt unit test of the project passes (the orchestrated builds leave them out).

The Dagster dbt steps run ``dbt build --exclude test_type:unit``: unit tests prove SQL logic
on fixed rows, which a tenant's partition does not change. Here they all run, against the
test database, and the count that passed must be the count the project declares.

Unit tests read the column types of their inputs, so the models must exist: the tables
(``marts_built``) and the views, created again here because a test that drops its tenant's
raw schema (``drop schema … cascade``) drops the staging view that unions it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pulse.dbt import DBT_PROJECT_DIR
from tests.conftest import run_dbt


@pytest.mark.usefixtures("marts_built")
def test_every_dbt_unit_test_of_the_project_passes(tmp_path: Path) -> None:
    target = tmp_path / "target"
    run_dbt(["run", "--select", "config.materialized:view", "--target-path", str(target)])

    output = run_dbt(["test", "--select", "test_type:unit", "--target-path", str(target)])

    # The manifest of this very invocation: the project as it is now, not a stale parse.
    declared = set(json.loads((target / "manifest.json").read_text())["unit_tests"])
    results = json.loads((target / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert declared, "the project declares no unit test"
    assert set(statuses) == declared
    # and the project's on-run-start and on-run-end hooks, nothing else
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    hooks = len(project["on-run-start"]) + len(project["on-run-end"])
    assert hooks == 4
    assert len(results) == len(declared) + hooks
    assert [unique_id for unique_id, status in statuses.items() if status != "pass"] == []
    summary = re.sub(r"\x1b\[[0-9;]*m", "", output)  # dbt's colours
    assert f"Finished running {hooks} project hooks, {len(declared)} unit tests in" in summary, summary[-2000:]
    assert f"Done. PASS={len(declared) + hooks} WARN=0 ERROR=0 SKIP=0" in summary  # a hook's OK is a PASS too
