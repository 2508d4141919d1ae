"""The embedded cluster's lifecycle, in its own PULSE_HOME and port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from pulse.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from pulse.settings import Settings
from tests.conftest import free_port


def make_settings(home: Path, port: int) -> Settings:
    return Settings(home=home, external_database_url=None, db_port=port, auth_mode="dev", sandbox_url="http://x")


def test_start_stop_keeps_data_across_restarts(tmp_path: Path) -> None:
    cluster = EmbeddedPostgres(make_settings(tmp_path / "home", free_port()))
    assert cluster.status().initialised is False
    try:
        status = cluster.start()
        assert (status.initialised, status.running) == (True, True)
        assert cluster.start().pid == status.pid  # idempotent: the same server
        with psycopg.connect(cluster.url()) as conn:
            conn.execute("create table kept (value text)")
            conn.execute("insert into kept values ('survives')")
        assert cluster.stop().running is False
        cluster.start()
        with psycopg.connect(cluster.url()) as conn:
            assert conn.execute("select value from kept").fetchall() == [("survives",)]
    finally:
        cluster.stop()


def test_password_is_required_over_tcp(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", free_port())
    cluster = EmbeddedPostgres(settings)
    try:
        cluster.start()
        wrong = cluster.url().replace(settings.superuser_password, "wrong-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong)
    finally:
        cluster.stop()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cluster = EmbeddedPostgres(make_settings(tmp_path / "home", port))
        with pytest.raises(EmbeddedPostgresError, match=f"Port {port} .* Set PULSE_DB_PORT"):
            cluster.start()


SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


@pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or shutil.which("runuser") is None,
    reason="needs root (to become an ordinary user) and a system Python of the venv's version",
)
def test_an_ordinary_user_runs_the_cluster_without_switching_users() -> None:
    """As root, run Pulse's cluster code as `nobody`: the non-root path (no system user, no chown)."""
    home = Path(tempfile.mkdtemp(prefix="pulse-nobody-"))  # pytest's own tmp is root-only
    home.chmod(0o755)
    os.chown(home, 65534, 65534)
    try:
        _run_as_nobody(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run_as_nobody(home: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    site_packages = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    script = (
        "import os, psycopg\n"
        "from pulse.settings import get_settings\n"
        "from pulse.db.embedded import EmbeddedPostgres\n"
        "cluster = EmbeddedPostgres(get_settings())\n"
        "status = cluster.start()\n"
        "with psycopg.connect(cluster.url()) as conn:\n"
        "    user = conn.execute('select current_user').fetchone()[0]\n"
        "cluster.stop()\n"
        "print(os.getuid(), status.running, user)\n"
    )
    result = subprocess.run(
        [
            "runuser",
            "-u",
            "nobody",
            "--",
            "env",
            f"HOME={home}",
            f"PULSE_HOME={home / 'pulse'}",
            f"PULSE_DB_PORT={free_port()}",
            f"PYTHONPATH={repo}:{site_packages}",
            str(SYSTEM_PYTHON),
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["65534", "True", "pulse"]
    assert (home / "pulse" / "pgdata").stat().st_uid == 65534
