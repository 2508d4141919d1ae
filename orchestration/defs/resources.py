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
            # The venv's dbt, whether or not the venv is activated, as pulse-dbt: forked warm from
            # `pulse dbt-server` when one listens, else dbt in a process of its own
            # (pulse/warm_dbt.py); compiled templates kept between runs either way.
            "dbt": DbtCliResource(
                project_dir=dbt_project, dbt_executable=str(Path(sys.executable).with_name("pulse-dbt"))
            ),
        }
    )
