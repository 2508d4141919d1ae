"""Settings: the one place that reads Pulse's environment.

Everything that needs a location, a database or a key asks :func:`get_settings`.
Nothing here touches the network or the database; values are resolved lazily.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Slugs name PostgreSQL schemas (``raw_github__<slug>``), so they stay identifier-safe.
TENANT_SLUG_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"


def raw_schema(source_type: str, tenant: str) -> str:
    """The raw schema of one tenant and source type, ``raw_<source_type>__<tenant>``.

    Every writer of raw data (dlt connectors, the OTLP receiver, the MCP server, the history
    import) names its schema here, and dbt's ``union_tenant_sources`` reads the same pattern.
    The slug is checked because the name is interpolated into SQL.
    """
    if not re.match(TENANT_SLUG_PATTERN, tenant):
        raise ValueError(f"Tenant slug {tenant!r} is not a valid slug.")
    return f"raw_{source_type}__{tenant}"


def _read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


@dataclass(frozen=True)
class Settings:
    """Pulse configuration, from environment variables (see README, "Configuration")."""

    home: Path
    external_database_url: str | None
    db_port: int
    auth_mode: str
    sandbox_url: str

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("PULSE_HOME", PROJECT_ROOT / ".pulse")).resolve()
        return cls(
            home=home,
            external_database_url=os.environ.get("PULSE_DATABASE_URL") or None,
            db_port=int(os.environ.get("PULSE_DB_PORT", "54329")),
            auth_mode=os.environ.get("PULSE_AUTH", "dev"),
            sandbox_url=os.environ.get("PULSE_SANDBOX_URL", "http://127.0.0.1:8765"),
        )

    @property
    def uses_embedded_database(self) -> bool:
        return self.external_database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def dlt_dir(self) -> Path:
        return self.home / "dlt"

    @cached_property
    def secret_key(self) -> str:
        """Key that encrypts source credentials: ``PULSE_SECRET_KEY`` or a generated local one."""
        from_env = os.environ.get("PULSE_SECRET_KEY")
        if from_env:
            return from_env
        return _read_or_create_secret(self.home / "secret.key")

    @cached_property
    def superuser_password(self) -> str:
        """Password of the embedded cluster's owner role (never used for an external server)."""
        return _read_or_create_secret(self.home / "pg_password")

    @cached_property
    def reader_password(self) -> str:
        """Password of ``pulse_reader``, the row-level-security role the app connects as."""
        return os.environ.get("PULSE_READER_PASSWORD") or _read_or_create_secret(self.home / "reader_password")


def get_settings() -> Settings:
    return Settings.from_env()
