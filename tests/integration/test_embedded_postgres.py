"""The embedded cluster's lifecycle, in its own PULSE_HOME and port."""

from __future__ import annotations

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
