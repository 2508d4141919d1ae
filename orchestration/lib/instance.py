"""The Dagster instance Pulse uses locally: $PULSE_HOME/dagster, shared by the CLI and the UI."""

from __future__ import annotations

import os
from pathlib import Path

from pulse.settings import Settings

DAGSTER_YAML = """\
# Written by Pulse. Local instance: SQLite storage under this folder.
# Production (docker-compose.yml) uses PostgreSQL run/event storage instead.
telemetry:
  enabled: false
concurrency:
  runs:
    # One run at a time on a laptop: runs the sensors and schedules launch wait their turn.
    max_concurrent_runs: 1
  pools:
    default_limit: 1
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME (unless one is set) and export it for this process and its children."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
