"""The one DbtProject of the code location."""

from __future__ import annotations

from dagster_dbt import DbtProject

from pulse.dbt import DBT_PROJECT_DIR, ensure_manifest

ensure_manifest()

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
