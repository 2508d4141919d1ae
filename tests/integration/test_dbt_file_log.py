"""dbt's file log through pulse.dbt.dbt_env: each node's result at info, the statements only on request.

The statements dbt sends are debug lines; writing them cost 1.5-2 s of dbt's own CPU in a build
of the bench's 160 nodes (docs/scaling.md), so the file log is at info unless
DBT_LOG_LEVEL_FILE asks for more.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pulse.dbt import DBT_PROJECT_DIR, dbt_env

STATEMENT = "select 40 + 2 as answer"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt-target")  # shared: the second run parses partially


def file_log(target: Path, logs: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a statement through `dbt show` and return what dbt wrote to its file log (as text)."""
    for other in ("DBT_DEBUG", "DBT_LOG_FORMAT", "DBT_LOG_FORMAT_FILE"):
        monkeypatch.delenv(other, raising=False)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "show", "--inline", STATEMENT,
         "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path", str(logs)],
        env={**os.environ, **dbt_env()}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "42" in done.stdout  # the statement ran
    return (logs / "dbt.log").read_text()


def test_the_file_log_keeps_results_not_statements(
    settings: object, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    text = file_log(target, tmp_path, monkeypatch)
    assert "[info ]" in text and "Running with dbt=" in text
    assert "[debug]" not in text
    assert STATEMENT not in text


def test_the_statements_are_logged_on_request(
    settings: object, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    text = file_log(target, tmp_path, monkeypatch)
    assert "[debug]" in text
    assert STATEMENT in text
