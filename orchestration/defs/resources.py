"""Resources every domain shares."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.lib.dbt import dbt_project
from orchestration.lib.resources import PulseWarehouse


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "warehouse": PulseWarehouse(),
            # The venv's dbt, whether or not the venv is activated.
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=str(Path(sys.executable).with_name("dbt"))),
        }
    )
