"""The Dagster steps' dbt target folders: which are removed, and how long they are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration.lib.dbt_targets import (
    DEFAULT_KEEP_DAYS,
    STEP_TARGET,
    DbtTargetsConfigError,
    keep_days_from_env,
    prune_before_step,
    prune_step_targets,
)

NOW = 1_800_000_000.0
DAY = 86400


def age(path: Path, days_old: float) -> None:
    os.utime(path, (NOW - days_old * DAY,) * 2, follow_symlinks=False)


def folder(root: Path, name: str, *, days_old: float, log_days_old: float | None = None) -> Path:
    """A step folder as dbt leaves it: its dbt.log written ``log_days_old`` ago (default: with it)."""
    path = root / name
    path.mkdir()
    (path / "dbt.log").write_text("{}\n")
    age(path / "dbt.log", days_old if log_days_old is None else log_days_old)
    age(path, days_old)
    return path


def test_only_step_folders_dbt_last_wrote_more_than_the_days_kept_ago_are_removed(tmp_path: Path) -> None:
    old_step = folder(tmp_path, "dbt_models-21788f8-42f69d3", days_old=8)
    old_later_step = folder(tmp_path, "dbt_models_after_fct_agent_runs-3060a1a-97c8ebb", days_old=30)
    young_step = folder(tmp_path, "dbt_models-3060a1a-4351f33", days_old=6.9)
    # started 9 days ago and still writing its log: a long step in use
    running = folder(tmp_path, "dbt_models-d8343ad-ff32dfe", days_old=9, log_days_old=0.01)
    compiled = folder(tmp_path, "compiled", days_old=100)  # the project's own dbt commands'
    no_dbt_files = tmp_path / "dbt_models-0123456-789abcd"  # named so, but nothing of dbt's in it
    no_dbt_files.mkdir()
    age(no_dbt_files, 100)
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    age(manifest, 100)
    linked = tmp_path / "dbt_models-aaaaaaa-bbbbbbb"
    linked.symlink_to(folder(tmp_path, "elsewhere", days_old=100))
    age(linked, 100)

    removed = prune_step_targets(tmp_path, keep_days=7, now=NOW)

    assert removed == [old_step, old_later_step]
    assert not old_step.exists() and not old_later_step.exists()
    for kept in (young_step, running, compiled, no_dbt_files, manifest, tmp_path / "elsewhere" / "dbt.log"):
        assert kept.exists(), kept
    assert linked.is_symlink()


def test_a_missing_target_folder_has_nothing_to_remove(tmp_path: Path) -> None:
    assert prune_step_targets(tmp_path / "no-such-folder", keep_days=1) == []


@pytest.mark.parametrize(
    ("name", "is_step"),
    [
        ("dbt_models-21788f8-42f69d3", True),
        ("dbt_models_after_fct_agent_runs_and_fct_work_item_compliance-40a6b6e-f88617a", True),
        ("dbt_models-21788F8-42f69d3", False),  # dagster-dbt's ids are lower-case hex
        ("dbt_models-21788f-42f69d3", False),
        ("dbt_models-21788f8-42f69d3a", False),
        ("dbt_models-21788f8-42f69d3.old", False),
        ("dbt-models-21788f8-42f69d3", False),  # an op name has no hyphen
        ("compiled", False),
    ],
)
def test_the_names_dagster_dbt_gives_step_folders(name: str, is_step: bool) -> None:
    assert bool(STEP_TARGET.fullmatch(name)) is is_step


def test_the_days_kept_come_from_the_environment() -> None:
    assert keep_days_from_env({}) == DEFAULT_KEEP_DAYS == 7
    assert keep_days_from_env({"PULSE_DBT_TARGETS_KEEP_DAYS": " 1.5 "}) == 1.5
    assert keep_days_from_env({"PULSE_DBT_TARGETS_KEEP_DAYS": ""}) == 7


@pytest.mark.parametrize("value", ["a week", "0.5", "0", "-3", "nan"])
def test_a_wrong_number_of_days_is_refused_with_what_to_write(value: str) -> None:
    with pytest.raises(DbtTargetsConfigError) as refused:
        keep_days_from_env({"PULSE_DBT_TARGETS_KEEP_DAYS": value})
    assert str(refused.value) == (
        f"PULSE_DBT_TARGETS_KEEP_DAYS={value!r} is not a number of days of at least 1; write e.g. 7 (the default)."
    )


def test_before_a_step_the_old_folders_go_and_a_wrong_setting_only_warns(tmp_path: Path) -> None:
    old_step = folder(tmp_path, "dbt_models-21788f8-42f69d3", days_old=8)
    keep = {"PULSE_DBT_TARGETS_KEEP_DAYS": "a week"}
    assert prune_before_step(keep, target_dir=tmp_path, now=NOW) == (
        "warning",
        "dbt target folders of earlier steps not removed: PULSE_DBT_TARGETS_KEEP_DAYS='a week' is not a number of "
        "days of at least 1; write e.g. 7 (the default).",
    )
    assert old_step.exists()
    assert prune_before_step({}, target_dir=tmp_path, now=NOW) == (
        "info",
        "removed 1 dbt target folder(s) of steps more than 7 days old",
    )
    assert not old_step.exists()
    assert prune_before_step({}, target_dir=tmp_path, now=NOW) is None
