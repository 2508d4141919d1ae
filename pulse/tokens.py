"""API tokens: who is calling the ingest receiver or the MCP server, for which tenant.

A token is ``pulse_<kind>_<random>``; the database keeps only its SHA-256, so a leaked
database does not leak tokens. ``resolve_token`` is the one place requests are authenticated.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, text

from pulse import control

KINDS = ("ingest", "agent")


@dataclass(frozen=True)
class TokenScope:
    """What an accepted token may act as."""

    token_id: int
    tenant_id: str
    kind: str
    user_email: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: Connection, tenant_id: str, kind: str, *, name: str, actor: str, user_email: str | None = None
) -> str:
    """Create a token and return it; it is never retrievable again."""
    if kind not in KINDS:
        raise control.ControlError(f"Unknown token kind {kind!r}; choose one of {', '.join(KINDS)}.")
    control.require_tenant(conn, tenant_id)
    user_id = None
    if kind == "agent":
        if not user_email:
            raise control.ControlError("An agent token acts for one user: give --user EMAIL.")
        user_id = control.require_user(conn, user_email)
    token = f"pulse_{kind}_{secrets.token_urlsafe(32)}"
    token_id: int = conn.execute(
        text(
            "insert into control.api_tokens (tenant_id, kind, user_id, name, token_sha256, token_hint) "
            "values (:t, :kind, :u, :name, :digest, :hint) returning token_id"
        ),
        {"t": tenant_id, "kind": kind, "u": user_id, "name": name, "digest": _digest(token), "hint": token[-4:]},
    ).scalar_one()
    control.audit(
        conn,
        actor=actor,
        action="token.create",
        entity_type="api_token",
        entity_id=str(token_id),
        tenant_id=tenant_id,
        new={"kind": kind, "name": name, "user": user_email, "token": token},
    )
    return token


def resolve_token(conn: Connection, token: str | None, kind: str) -> TokenScope | None:
    """The scope of a valid, unrevoked token of ``kind`` for an active tenant; None otherwise."""
    if not token:
        return None
    row = conn.execute(
        text(
            "select k.token_id, k.tenant_id, k.kind, u.email from control.api_tokens as k "
            "join control.tenants as t on t.slug = k.tenant_id "
            "left join control.users as u on u.user_id = k.user_id "
            "where k.token_sha256 = :digest and k.kind = :kind and k.revoked_at is null "
            "and t.is_active and t.deleted_at is null"
        ),
        {"digest": _digest(token), "kind": kind},
    ).one_or_none()
    return TokenScope(row[0], row[1], row[2], row[3]) if row else None


def revoke_token(conn: Connection, token_id: int, *, actor: str) -> None:
    tenant_id = conn.execute(
        text("update control.api_tokens set revoked_at = now() where token_id = :id returning tenant_id"),
        {"id": token_id},
    ).scalar_one_or_none()
    if tenant_id is None:
        raise control.ControlError(f"No token with id {token_id}.")
    control.audit(
        conn, actor=actor, action="token.revoke", entity_type="api_token", entity_id=str(token_id), tenant_id=tenant_id
    )
