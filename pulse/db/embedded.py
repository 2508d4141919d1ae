"""A project-local PostgreSQL cluster, managed with the binaries of the ``pgserver`` wheel.

The cluster lives in ``$PULSE_HOME/pgdata``, listens on ``127.0.0.1:$PULSE_DB_PORT`` only,
requires a password (scram-sha-256) over TCP, and survives restarts of Pulse: ``start`` is
idempotent and every command that needs the database calls it. PostgreSQL refuses to run as
root, so as root the server runs as an unprivileged system user (``pulse-pg``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pulse.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_USER = "pulse-pg"
SUPERUSER = "pulse"
DATABASE = "pulse"


class EmbeddedPostgresError(RuntimeError):
    """The embedded cluster could not be initialised, started or stopped."""


def _bin_dir() -> Path:
    override = os.environ.get("PULSE_PG_BIN")
    if override:
        return Path(override)
    # Locate the wheel's binaries without importing pgserver (its import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The pgserver wheel is not installed; run `make setup`, or set PULSE_DATABASE_URL "
            "to use an existing PostgreSQL server."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    pid: int | None
    port: int
    pgdata: Path

    def describe(self) -> str:
        if not self.initialised:
            return f"not initialised ({self.pgdata})"
        if not self.running:
            return f"stopped ({self.pgdata})"
        return f"running, pid {self.pid}, 127.0.0.1:{self.port} ({self.pgdata})"


class EmbeddedPostgres:
    """Start, stop and describe the embedded cluster described by ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pgdata = settings.pgdata
        self.port = settings.db_port
        self.bin = _bin_dir()
        self.logfile = self.pgdata / "postgres.log"

    # -- public API -----------------------------------------------------------------

    def url(self, database: str = DATABASE) -> str:
        password = self.settings.superuser_password
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def status(self) -> ClusterStatus:
        initialised = (self.pgdata / "PG_VERSION").exists()
        pid = self._running_pid() if initialised else None
        return ClusterStatus(initialised, pid is not None, pid, self.port, self.pgdata)

    def start(self, timeout: float = 60.0) -> ClusterStatus:
        """Initialise (first time) and start the cluster; a no-op when it already runs."""
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        current = self.status()
        if current.running:
            return current
        if _port_in_use(self.port):
            raise EmbeddedPostgresError(
                f"Port {self.port} on 127.0.0.1 is taken by another program, so the embedded "
                "PostgreSQL cannot start. Set PULSE_DB_PORT to a free port."
            )
        # A crash can leave a stale postmaster.pid behind; pg_ctl handles it when the pid is gone.
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "start",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.logfile),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                f"-p {self.port}",
            ],
            what="start the embedded PostgreSQL",
        )
        self._ensure_database()
        return self.status()

    def stop(self) -> ClusterStatus:
        if self.status().running:
            self._run(
                [str(self.bin / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w"],
                what="stop the embedded PostgreSQL",
            )
        return self.status()

    # -- internals --------------------------------------------------------------------

    def _running_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def _system_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pass
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedPostgresError(
                "PostgreSQL refuses to run as root and `useradd` is missing, so no unprivileged "
                "user can be created. Run Pulse as an ordinary user or set PULSE_DATABASE_URL."
            )
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)

    def _run(self, argv: list[str], *, what: str) -> subprocess.CompletedProcess[str]:
        user = self._system_user()
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            cwd=str(self.pgdata.parent),
            env={**os.environ, "LC_ALL": "C"},
        )
        if result.returncode != 0:
            tail = ""
            if self.logfile.exists():
                tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-15:])
            raise EmbeddedPostgresError(
                f"Could not {what} (exit {result.returncode}).\n{result.stderr.strip()}\n"
                f"{tail}\nSee {self.logfile}; `pulse db status` shows the cluster's state."
            )
        return result

    def _initdb(self) -> None:
        user = self._system_user()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        os.chmod(self.pgdata, 0o700)
        if user is not None:
            _make_traversable(self.pgdata.parent)
            _make_traversable(self.bin)
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        password = self.settings.superuser_password
        with tempfile.NamedTemporaryFile("w", dir=self.pgdata.parent, delete=False) as pwfile:
            pwfile.write(password + "\n")
        if user is not None:
            os.chown(pwfile.name, user.pw_uid, user.pw_gid)
        try:
            log.info("initialising the embedded PostgreSQL cluster in %s", self.pgdata)
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile.name}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                what="initialise the embedded PostgreSQL cluster",
            )
        finally:
            os.unlink(pwfile.name)
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# Pulse embedded cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "timezone = 'UTC'\n"
            )

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f'create database "{DATABASE}"')


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach ``path`` (adds o+x to each parent, as pgserver does)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, mode | stat.S_IXOTH)


def wait_until_accepting(url: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
