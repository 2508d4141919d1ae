"""Sandbox: local simulators of the tools' HTTP APIs, with seeded, realistic data per tenant.

Drives the demo and the tests over real HTTP (real paging, real errors). Today it speaks
GitHub's REST API; see ``connectors/sandbox/README.md``.
"""

from connectors.sandbox.github.world import GitHubWorld, TouchResult, github_world
from connectors.sandbox.server import RequestRecord, SandboxFaults, SandboxServer, serve, token_for

__all__ = [
    "GitHubWorld",
    "RequestRecord",
    "SandboxFaults",
    "SandboxServer",
    "TouchResult",
    "github_world",
    "serve",
    "token_for",
]
