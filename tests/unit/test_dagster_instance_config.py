"""The Dagster instance configs Pulse writes and ships are ones Dagster accepts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from orchestration.lib.instance import DAGSTER_YAML, ensure_dagster_home
from pulse.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_the_local_instance_config_loads_with_one_run_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings(home=tmp_path, external_database_url=None, db_port=1, auth_mode="dev", sandbox_url="x")
    home = ensure_dagster_home(settings)
    assert (home / "dagster.yaml").read_text() == DAGSTER_YAML
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_the_production_instance_config_limits_runs_without_conflicting_settings() -> None:
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 4
    assert "config" not in config["run_coordinator"]  # run limits live under concurrency only
    assert config["telemetry"] == {"enabled": False}
