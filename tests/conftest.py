"""Test session setup: a throwaway PostgreSQL cluster and a throwaway PULSE_HOME.

The session starts its own embedded cluster on a free port in a temporary directory
(or uses PULSE_TEST_DATABASE_URL when given), migrates it, and stops it at the end.
Environment variables are set for the whole session so that subprocesses (dbt, dlt,
Streamlit, Dagster) see the same database.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.sandbox_fixtures"]

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pulse_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pulse_home")


@pytest.fixture(scope="session")
def settings(pulse_home: Path) -> Iterator[object]:
    """Settings of the test session, with a running, migrated database."""
    from pulse.db import database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.db.migrate import migrate
    from pulse.settings import Settings

    previous = dict(os.environ)
    os.environ["PULSE_HOME"] = str(pulse_home)
    os.environ["PULSE_DB_PORT"] = str(free_port())
    os.environ["PULSE_SECRET_KEY"] = "test-secret-key-not-for-production"
    os.environ["DAGSTER_HOME"] = str(pulse_home / "dagster")
    external = os.environ.get("PULSE_TEST_DATABASE_URL")
    if external:
        os.environ["PULSE_DATABASE_URL"] = external
    else:
        os.environ.pop("PULSE_DATABASE_URL", None)
    current = Settings.from_env()
    cluster = None if external else EmbeddedPostgres(current)
    try:
        database_url(current)  # starts the embedded cluster
        migrate(current)
        yield current
    finally:
        if cluster is not None:
            cluster.stop()
        os.environ.clear()
        os.environ.update(previous)


@pytest.fixture(scope="session")
def db_url(settings: object) -> str:
    from pulse.db import database_url

    return database_url(settings)  # type: ignore[arg-type]


def run_dbt(args: list[str], timeout: float | None = None) -> str:
    """Run dbt against the test database; fail the test with dbt's output if it fails (or takes
    longer than ``timeout`` seconds)."""
    import subprocess

    from pulse.dbt import DBT_PROJECT_DIR, dbt_env

    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), *args, "--project-dir", str(DBT_PROJECT_DIR)],
        env={**os.environ, **dbt_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return result.stdout


@pytest.fixture(autouse=True)
def no_dagster_instance_left_entered() -> Iterator[None]:
    """Fail the test that leaves a Dagster instance entered, and undo it for the tests after.

    Entering an instance (``with instance``; a schedule context does it the first time its
    ``instance`` or ``resources`` are read) sets a context variable, DefsStateStorage's current
    storage, until the instance exits. A schedule context with resources used outside a ``with``
    never exits it: it lives on in a reference cycle until the garbage collector frees it. When
    that happens on another thread (a test's HTTP or SMTP server), the main thread keeps the
    variable, now pointing at a storage whose instance is gone, and every later Dagster job or
    definitions load in the session fails with "Attempted to resolve undefined DagsterInstance
    weakref". So each test must leave the variable as it found it: unset."""
    yield
    defs_state = sys.modules.get("dagster._core.storage.defs_state.base")
    if defs_state is None or defs_state.DefsStateStorage.get() is None:
        return
    defs_state._current_storage.set(None)  # the tests after this one start clean
    pytest.fail(
        "a Dagster instance was entered and not exited (DefsStateStorage's current storage is still "
        "set): use build_schedule_context(...) and instances in a `with` block",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def marts_built(settings: object) -> None:
    """`dbt build` once, so every mart exists with its contract, RLS policy and grants.

    Models and data tests; the unit tests run once, in tests/integration/test_dbt_unit_tests.py.
    """
    run_dbt(["build", "--exclude", "test_type:unit"])


@pytest.fixture()
def admin_conn(db_url: str) -> Iterator[object]:
    """An admin connection in a transaction that is rolled back after the test."""
    from pulse.db import admin_engine

    engine = admin_engine()
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()
