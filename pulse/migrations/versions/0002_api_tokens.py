"""API tokens: per-tenant ingest tokens (OTLP receiver) and per-user agent tokens (MCP).

Only a SHA-256 hash of each token is stored; the token itself is shown once, at creation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table control.api_tokens (
            token_id      bigint generated always as identity primary key,
            tenant_id     text not null references control.tenants (slug),
            kind          text not null check (kind in ('ingest', 'agent')),
            user_id       bigint references control.users (user_id),
            name          text not null,
            token_sha256  text not null unique,
            token_hint    text not null,
            created_at    timestamptz not null default now(),
            revoked_at    timestamptz,
            -- an agent token acts for one user; an ingest token for the whole tenant
            check ((kind = 'agent') = (user_id is not null))
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table control.api_tokens")
