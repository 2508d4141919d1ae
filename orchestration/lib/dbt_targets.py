"""The target folders of the Dagster steps' dbt commands, and how long they are kept.

dagster-dbt gives each dbt command of a step its own target folder, so that concurrent steps do
not overwrite each other's artifacts, and never removes them. Each step removes the folders
older than the days kept before it runs dbt.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from pulse.dbt import DBT_PROJECT_DIR

#: How long a Dagster step's dbt target folder is kept, in days, unless this variable says.
KEEP_DAYS_ENV = "PULSE_DBT_TARGETS_KEEP_DAYS"
DEFAULT_KEEP_DAYS = 7.0

#: The folders dagster-dbt makes for each dbt command of a step: ``<op>-<run id[:7]>-<uuid[:7]>``
#: under the project's target folder, each with its manifest, run results, compiled SQL and
#: dbt.log (about 6 MB). Nothing removes them, so a daily run of 50 tenants' four dbt steps
#: would add about 1.2 GB a day.
STEP_TARGET = re.compile(r"[A-Za-z0-9_]+-[0-9a-f]{7}-[0-9a-f]{7}")


#: What dbt writes into a step folder as it runs (dbt.log with every node's start and end): one of
#: them must be there for a folder to count as a step's, and the newest of them dates it.
DBT_FILES = ("dbt.log", "run_results.json", "manifest.json", "partial_parse.msgpack")

#: The fewest days kept: a step running now must never lose its folder to another step.
MIN_KEEP_DAYS = 1.0


class DbtTargetsConfigError(ValueError):
    """PULSE_DBT_TARGETS_KEEP_DAYS is not a number of days of at least MIN_KEEP_DAYS."""


def keep_days_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``PULSE_DBT_TARGETS_KEEP_DAYS`` (days, at least 1), default 7."""
    env = os.environ if environ is None else environ
    raw = env.get(KEEP_DAYS_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP_DAYS
    try:
        days = float(raw)
    except ValueError:
        days = float("nan")
    if not days >= MIN_KEEP_DAYS:  # also refuses nan
        raise DbtTargetsConfigError(
            f"{KEEP_DAYS_ENV}={raw!r} is not a number of days of at least {MIN_KEEP_DAYS:g}; "
            f"write e.g. {DEFAULT_KEEP_DAYS:g} (the default)."
        )
    return days


def step_targets_dir() -> Path:
    """Where dagster-dbt puts its step folders: ``DBT_TARGET_PATH`` (default ``target``), under
    the project folder unless absolute."""
    path = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    return path if path.is_absolute() else DBT_PROJECT_DIR / path


def last_written(folder: Path) -> float | None:
    """When dbt last wrote to a step folder: the newest of the folder and the files dbt keeps
    writing at its top (dbt.log through the whole run; a folder's own time moves only when an
    entry is added). None when it holds none of them: not a step folder."""
    times = []
    for name in DBT_FILES:
        try:
            times.append((folder / name).stat().st_mtime)
        except FileNotFoundError:
            continue
    if not times:
        return None
    return max(folder.stat().st_mtime, *times)


def prune_step_targets(target_dir: Path, *, keep_days: float, now: float | None = None) -> list[Path]:
    """Remove the step folders under ``target_dir`` that dbt last wrote to more than
    ``keep_days`` ago; return those removed. Anything else there (the project's own manifest,
    ``compiled/``, ``run/``, a folder without dbt's files) is left alone."""
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    removed = []
    for path in sorted(target_dir.iterdir()) if target_dir.is_dir() else []:
        if path.is_symlink() or not path.is_dir() or not STEP_TARGET.fullmatch(path.name):
            continue
        try:
            written = last_written(path)
        except FileNotFoundError:  # another step removed it just now
            continue
        if written is not None and written < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
    return removed


def prune_before_step(
    environ: Mapping[str, str] | None = None, *, target_dir: Path | None = None, now: float | None = None
) -> tuple[str, str] | None:
    """What a Dagster step does before it runs dbt: remove the step folders older than the days
    kept (the environment's setting, under :func:`step_targets_dir`). Returns what to log, as
    (level, message), or None when nothing was removed. A wrong setting or a folder that cannot
    be read is a warning and removes nothing: housekeeping never stops a build."""
    try:
        keep_days = keep_days_from_env(environ)
        removed = prune_step_targets(target_dir or step_targets_dir(), keep_days=keep_days, now=now)
    except (DbtTargetsConfigError, OSError) as error:
        return "warning", f"dbt target folders of earlier steps not removed: {error}"
    if not removed:
        return None
    return "info", f"removed {len(removed)} dbt target folder(s) of steps more than {keep_days:g} days old"
