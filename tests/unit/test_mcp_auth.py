"""pulse.mcp.auth: token answers are cached by digest for a TTL, and the SDK verifier maps them."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from pulse.mcp import auth
from pulse.mcp.runs import AgentIdentity

ANA = AgentIdentity("mcp_unit", "ana@example.test", "Ana")


class FakeEngine:
    def __init__(self) -> None:
        self.connections = 0

    @contextmanager
    def connect(self) -> Any:
        self.connections += 1
        yield object()


@pytest.fixture()
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    seen: list[str | None] = []

    def load_identity(conn: object, token: str | None) -> AgentIdentity | None:
        seen.append(token)
        return ANA if token == "pulse_agent_good" else None

    monkeypatch.setattr(auth, "load_identity", load_identity)
    return seen


def test_answers_are_cached_for_the_ttl_then_looked_up_again(lookups: list[str | None]) -> None:
    now = [100.0]
    resolver = auth.TokenResolver(FakeEngine(), ttl_seconds=30, clock=lambda: now[0])  # type: ignore[arg-type]
    assert resolver.resolve("pulse_agent_good") == ANA
    assert resolver.resolve("pulse_agent_good") == ANA
    assert resolver.resolve("pulse_agent_bad") is None
    assert resolver.resolve("pulse_agent_bad") is None
    assert lookups == ["pulse_agent_good", "pulse_agent_bad"]
    now[0] += 30.5
    assert resolver.resolve("pulse_agent_good") == ANA
    assert lookups == ["pulse_agent_good", "pulse_agent_bad", "pulse_agent_good"]
    assert all("pulse_agent" not in key for key in resolver._cache)


def test_empty_tokens_are_refused_without_a_lookup(lookups: list[str | None]) -> None:
    engine = FakeEngine()
    resolver = auth.TokenResolver(engine)  # type: ignore[arg-type]
    assert (resolver.resolve(None), resolver.resolve("")) == (None, None)
    assert (lookups, engine.connections) == ([], 0)


def test_the_verifier_maps_an_identity_to_an_access_token(lookups: list[str | None]) -> None:
    verifier = auth.PulseTokenVerifier(auth.TokenResolver(FakeEngine()))  # type: ignore[arg-type]
    access = anyio.run(verifier.verify_token, "pulse_agent_good")
    assert access is not None
    assert (access.token, access.subject, access.claims) == (
        "pulse_agent_good",
        "ana@example.test",
        {"tenant_id": "mcp_unit"},
    )
    assert anyio.run(verifier.verify_token, "pulse_agent_bad") is None
