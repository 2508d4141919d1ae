"""Database access: one URL for everything, embedded PostgreSQL unless told otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from pulse.settings import Settings, get_settings

READER_ROLE = "pulse_reader"


@dataclass(frozen=True)
class ConnectionParts:
    """A database URL split into the pieces dbt profiles and libpq want."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> ConnectionParts:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=parts.path.lstrip("/") or "postgres",
        )

    def url(self, driver: str = "postgresql") -> str:
        from urllib.parse import quote

        return (
            f"{driver}://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{self.dbname}"
        )


def database_url(settings: Settings | None = None, *, start: bool = True) -> str:
    """The admin URL (``postgresql://``): ``PULSE_DATABASE_URL``, or the embedded cluster.

    With the embedded cluster, ``start=True`` starts it on demand.
    """
    settings = settings or get_settings()
    if settings.external_database_url:
        return settings.external_database_url
    from pulse.db.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(settings)
    if start:
        cluster.start()
    return cluster.url()


def reader_url(settings: Settings | None = None) -> str:
    """URL of the row-level-security reader role on the same server and database."""
    settings = settings or get_settings()
    admin = ConnectionParts.from_url(database_url(settings))
    reader = ConnectionParts(admin.host, admin.port, READER_ROLE, settings.reader_password, admin.dbname)
    return reader.url()


def sqlalchemy_url(url: str) -> str:
    return ConnectionParts.from_url(url).url("postgresql+psycopg")


@lru_cache(maxsize=8)
def _engine_for(url: str) -> sa.Engine:
    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, future=True)


def admin_engine(settings: Settings | None = None) -> sa.Engine:
    """Engine on the admin role (control plane, migrations). Not for the app."""
    return _engine_for(database_url(settings))
