"""Apply the control-plane migrations (Alembic) and set up database roles."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from pulse.db import READER_ROLE, admin_engine, database_url, sqlalchemy_url
from pulse.settings import Settings, get_settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url(settings)).replace("%", "%%"))
    return config


def migrate(settings: Settings | None = None, revision: str = "head") -> None:
    """Upgrade the control plane to ``revision`` and (re)set the reader role's password."""
    settings = settings or get_settings()
    command.upgrade(alembic_config(settings), revision)
    with admin_engine(settings).begin() as conn:
        # Passwords are environmental, so they live outside the migrations.
        password = settings.reader_password.replace("'", "''")
        conn.execute(text(f"alter role {READER_ROLE} with login password '{password}'"))
    log.info("control plane migrated to %s", revision)


def current_revision(settings: Settings | None = None) -> str | None:
    settings = settings or get_settings()
    with admin_engine(settings).connect() as conn:
        exists = conn.execute(text("select to_regclass('control.alembic_version')")).scalar()
        if exists is None:
            return None
        return conn.execute(text("select version_num from control.alembic_version")).scalar()
