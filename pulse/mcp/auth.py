"""Agent tokens for the MCP server: resolve once, cache briefly, never log them.

Cache keys are the tokens' SHA-256 digests, so the cache does not hold a token as a key.
A revoked token stops working within ``ttl_seconds``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import anyio.to_thread
from mcp.server.auth.provider import AccessToken
from sqlalchemy import Connection, Engine, text

from pulse.mcp.runs import AgentIdentity
from pulse.tokens import resolve_token

DEFAULT_TTL_SECONDS = 60.0
MAX_CACHED = 4096


def load_identity(conn: Connection, token: str | None) -> AgentIdentity | None:
    """The user and tenant an agent token acts for; None if the token is not a valid agent token."""
    scope = resolve_token(conn, token, "agent")
    if scope is None or not scope.user_email:
        return None
    name = conn.execute(
        text("select name from control.users where email = :e"), {"e": scope.user_email}
    ).scalar_one_or_none()
    return AgentIdentity(tenant_id=scope.tenant_id, user_email=scope.user_email.lower(), user_name=name)


class TokenResolver:
    """Resolves agent tokens against the control plane, caching each answer for ``ttl_seconds``."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, AgentIdentity | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, token: str | None) -> AgentIdentity | None:
        if not token:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.engine.connect() as conn:
            identity = load_identity(conn, token)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            self._cache[key] = (now + self.ttl_seconds, identity)
        return identity


class PulseTokenVerifier:
    """The SDK's ``TokenVerifier`` for Streamable HTTP: a Bearer agent token, or 401."""

    def __init__(self, resolver: TokenResolver) -> None:
        self.resolver = resolver

    async def verify_token(self, token: str) -> AccessToken | None:
        identity = await anyio.to_thread.run_sync(self.resolver.resolve, token)
        if identity is None:
            return None
        return AccessToken(
            token=token,
            client_id=f"pulse-agent:{identity.tenant_id}:{identity.user_email}",
            scopes=[],
            subject=identity.user_email,
            claims={"tenant_id": identity.tenant_id},
        )
