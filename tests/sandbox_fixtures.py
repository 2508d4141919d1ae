"""Pytest plugin: the sandbox API server for the whole test session.

``sandbox`` is one :class:`SandboxServer` on a free port of 127.0.0.1 (seed 42, today's
world). Tests that change its faults use ``sandbox_faults``, which clears them before and
after the test. Tests that change a tenant's world (touches) should use a tenant of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from connectors.sandbox import SandboxFaults, SandboxServer

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

SANDBOX_SEED = 42


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(host="127.0.0.1", port=0, seed=SANDBOX_SEED).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox_faults(sandbox: SandboxServer) -> Iterator[SandboxFaults]:
    """The session sandbox's faults, cleared before and after the test."""
    sandbox.faults.reset()
    try:
        yield sandbox.faults
    finally:
        sandbox.faults.reset()
