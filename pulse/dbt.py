"""How Pulse runs dbt: the project's location and the environment its profile reads."""

from __future__ import annotations

import os
from pathlib import Path

from pulse.db import ConnectionParts, database_url
from pulse.settings import PROJECT_ROOT, Settings, get_settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables dbt_project/profiles.yml reads, for the configured database."""
    parts = ConnectionParts.from_url(database_url(settings or get_settings()))
    return {
        "PULSE_DBT_HOST": parts.host,
        "PULSE_DBT_PORT": str(parts.port),
        "PULSE_DBT_USER": parts.user,
        "PULSE_DBT_PASSWORD": parts.password,
        "PULSE_DBT_DBNAME": parts.dbname,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }


def export_dbt_env(settings: Settings | None = None) -> None:
    """Put the dbt environment into this process, for dbt runs it starts (dagster-dbt)."""
    os.environ.update(dbt_env(settings))


def manifest_path() -> Path:
    return DBT_PROJECT_DIR / "target" / "manifest.json"


def ensure_manifest() -> Path:
    """Parse the dbt project if it has no manifest yet (local files only: no database, no network).

    dagster-dbt reads ``target/manifest.json`` when the definitions load; `make` targets run
    ``dbt parse`` up front, and this covers a fresh checkout started any other way.
    """
    import subprocess
    import sys

    path = manifest_path()
    if not path.exists():
        dbt = Path(sys.executable).with_name("dbt")
        subprocess.run(
            [
                str(dbt),
                "parse",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--quiet",
            ],
            check=True,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        )
    return path
