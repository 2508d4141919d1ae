"""How Pulse runs dbt: the project's location and the environment its profile reads."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from pulse.db import ConnectionParts, database_url
from pulse.settings import PROJECT_ROOT, Settings, get_settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

#: The level of dbt's file log (``dbt.log``) unless DBT_LOG_LEVEL_FILE says otherwise: every
#: node's start, end and result, warnings and errors. dbt's default, debug, also writes every
#: statement it sends and each connection's comings and goings: 1.5-2 s of dbt's CPU in a build of
#: the bench's 160 nodes, where dbt's own Python is what bounds a build (docs/scaling.md). Set
#: DBT_LOG_LEVEL_FILE=debug to log them (DBT_DEBUG=true does too). Being set, it also keeps
#: DBT_LOG_LEVEL from reaching the file log; a value dbt does not know fails every dbt command.
DBT_LOG_LEVEL_FILE = "info"


def file_log_level() -> str:
    """The level of dbt's file log for the dbt commands Pulse starts (DBT_LOG_LEVEL_FILE above)."""
    return os.environ.get("DBT_LOG_LEVEL_FILE") or DBT_LOG_LEVEL_FILE


def dbt_env(
    settings: Settings | None = None, *, tenant_id: str | None = None, as_of: datetime | None = None
) -> dict[str, str]:
    """Environment variables the dbt project reads: its profile's database, and the run's tenant
    partition and "now" (macro run_var in dbt_project/macros/tenancy.sql; empty: every tenant,
    the run's start). Passed this way rather than as ``--vars``, which would make dbt parse the
    whole project again whenever they change."""
    parts = ConnectionParts.from_url(database_url(settings or get_settings()))
    return {
        "PULSE_DBT_HOST": parts.host,
        "PULSE_DBT_PORT": str(parts.port),
        "PULSE_DBT_USER": parts.user,
        "PULSE_DBT_PASSWORD": parts.password,
        "PULSE_DBT_DBNAME": parts.dbname,
        "PULSE_DBT_TENANT_ID": tenant_id or "",
        "PULSE_DBT_AS_OF": as_of.isoformat() if as_of else "",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_LOG_LEVEL_FILE": file_log_level(),
    }


def export_dbt_env(settings: Settings | None = None, *, tenant_id: str | None = None) -> None:
    """Put the dbt environment into this process, for the dbt runs it starts (dagster-dbt)."""
    os.environ.update(dbt_env(settings, tenant_id=tenant_id))


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
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_LEVEL_FILE": file_log_level()},
        )
    return path
