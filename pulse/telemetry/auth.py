"""Ingest-token authentication with a short in-memory cache.

A resolved token (or a rejected one) is remembered for ``ttl`` seconds, so a request costs
no database round trip for auth; a revoked token stops working within that TTL. The cache
is keyed by the token's SHA-256, never by the token itself, and tokens are never logged.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping

from pulse.telemetry.otlp import OtlpError

#: Returns the tenant slug of a valid ingest token, or None.
Resolver = Callable[[str], "str | None"]

MAX_ENTRIES = 10_000


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>`` or ``x-pulse-token`` (header names lower-case)."""
    authorization = headers.get("authorization", "").strip()
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    token = headers.get("x-pulse-token", "").strip()
    return token or None


class TokenCache:
    """Token → tenant, through ``resolver``, cached for ``ttl`` seconds."""

    def __init__(self, resolver: Resolver, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._resolver = resolver
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def tenant_for(self, token: str) -> str | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        tenant = self._resolver(token)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, tenant)
        return tenant

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The tenant of the request's token; OtlpError(401) when it is missing or not valid."""
        token = token_from_headers(headers)
        if token is None:
            raise OtlpError(
                401,
                "Missing ingest token: send 'Authorization: Bearer <token>' (OTEL_EXPORTER_OTLP_HEADERS) "
                "with a token from `pulse ingest token create`.",
            )
        tenant = self.tenant_for(token)
        if tenant is None:
            raise OtlpError(
                401,
                "Ingest token is not valid: it is unknown, revoked, or its tenant is inactive. "
                "Create a new one with `pulse ingest token create`.",
            )
        return tenant


def database_resolver(url: str) -> Resolver:
    """A resolver that asks the control plane (``pulse.tokens.resolve_token``)."""
    import sqlalchemy as sa

    from pulse.db import sqlalchemy_url
    from pulse.tokens import resolve_token

    engine = sa.create_engine(sqlalchemy_url(url), pool_size=2, max_overflow=2, pool_pre_ping=True)

    def resolve(token: str) -> str | None:
        with engine.connect() as conn:
            scope = resolve_token(conn, token, "ingest")
        return scope.tenant_id if scope else None

    return resolve
