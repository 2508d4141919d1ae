"""Alembic environment for the control plane (schema ``control``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "pulse.db.migrate sets sqlalchemy.url"

engine = create_engine(url)
with engine.begin() as connection:
    connection.execute(text("create schema if not exists control"))
    context.configure(
        connection=connection,
        version_table="alembic_version",
        version_table_schema="control",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
