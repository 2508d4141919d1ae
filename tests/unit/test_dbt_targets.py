"""The Dagster steps' dbt target folders: which are removed, and how long they are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration.lib.dbt_targets import (
    DEFAULT_KEEP_DAYS,
    DbtTargetsConfigError,
    keep_days_from_env,
    prune_step_targets,
)

NOW = 1_800_000_000.0
DAY = 86400


def folder(root: Path, name: str, *, days_old: float) -> Path:
    path = root / name
    path.mkdir()
    (path / "run_results.json").write_text("{}")
    os.utime(path, (NOW - days_old * DAY, NOW - days_old * DAY))
    return path


def test_only_step_folders_older_than_the_days_kept_are_removed(tmp_path: Path) -> None:
    old_step = folder(tmp_path, "dbt_models-21788f8-42f69d3", days_old=8)
    old_later_step = folder(tmp_path, "dbt_models_after_fct_agent_runs-3060a1a-97c8ebb", days_old=30)
    young_step = folder(tmp_path, "dbt_models-3060a1a-4351f33", days_old=6.9)
    compiled = folder(tmp_path, "compiled", days_old=100)  # the project's own dbt commands'
    other = folder(tmp_path, "notes-2026-12", days_old=100)  # not named as dagster-dbt names them
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    os.utime(manifest, (NOW - 100 * DAY, NOW - 100 * DAY))
    linked = tmp_path / "dbt_models-aaaaaaa-bbbbbbb"
    linked.symlink_to(folder(tmp_path, "elsewhere", days_old=100))
    os.utime(linked, (NOW - 100 * DAY, NOW - 100 * DAY), follow_symlinks=False)

    removed = prune_step_targets(tmp_path, keep_days=7, now=NOW)

    assert removed == [old_step, old_later_step]
    assert not old_step.exists() and not old_later_step.exists()
    assert young_step.exists() and compiled.exists() and other.exists() and manifest.exists()
    assert linked.is_symlink() and (tmp_path / "elsewhere" / "run_results.json").exists()


def test_a_fraction_of_a_day_and_a_missing_target_folder(tmp_path: Path) -> None:
    step = folder(tmp_path, "dbt_models-0123456-789abcd", days_old=0.6)
    assert prune_step_targets(tmp_path, keep_days=1, now=NOW) == []
    assert prune_step_targets(tmp_path, keep_days=0.5, now=NOW) == [step]
    assert prune_step_targets(tmp_path / "no-such-folder", keep_days=1) == []


def test_the_days_kept_come_from_the_environment() -> None:
    assert keep_days_from_env({}) == DEFAULT_KEEP_DAYS == 7
    assert keep_days_from_env({"PULSE_DBT_TARGETS_KEEP_DAYS": " 0.5 "}) == 0.5
    assert keep_days_from_env({"PULSE_DBT_TARGETS_KEEP_DAYS": ""}) == 7


@pytest.mark.parametrize("value", ["a week", "0", "-3", "nan"])
def test_a_wrong_number_of_days_is_refused_with_what_to_write(value: str) -> None:
    with pytest.raises(DbtTargetsConfigError) as refused:
        keep_days_from_env({"PULSE_DBT_TARGETS_KEEP_DAYS": value})
    assert str(refused.value) == (
        f"PULSE_DBT_TARGETS_KEEP_DAYS={value!r} is not a positive number of days; write e.g. 7 (the default) or 0.5."
    )
