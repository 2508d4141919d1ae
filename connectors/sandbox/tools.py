"""What the tracker and Azure DevOps simulators share: requests, responses, tokens, routing.

The HTTP server (``server.py``) hands every request under a tool's prefix to that tool's
``api.handle(server, request)``; the tool authenticates the way the real service does (with
the helpers below), takes its faults from ``server.faults`` (``TOOL_FAULTS``), counts its
rate limit with ``server.rate_window`` and answers from ``server.work_world(tenant)`` (and,
for Azure DevOps Git, ``server.world(tenant)``: the pull requests).

Base URLs a source is configured with (``{sandbox}`` is the server's ``url``):

=================  ===============================  ==========================================
tool               base URL                         credentials
=================  ===============================  ==========================================
Jira Cloud         ``{sandbox}/jira``               Basic ``<email>:atl_sandbox_<tenant>``
ClickUp v2         ``{sandbox}/clickup``            ``Authorization: pk_sandbox_<tenant>``
Azure Boards       ``{sandbox}/azure/<tenant>-eng`` Basic ``:ado_sandbox_<tenant>`` (PAT)
Azure DevOps Git   ``{sandbox}/azure/<tenant>-eng`` the same PAT
=================  ===============================  ==========================================

A token with the suffix ``_noperm`` authenticates but lacks read permission on projects,
lists and repositories (403 where the real service answers 403), for ``pulse source test``.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

TOKEN_PREFIX = {"jira": "atl_sandbox_", "clickup": "pk_sandbox_", "azure": "ado_sandbox_"}
_TENANT = r"(?P<tenant>[a-z][a-z0-9_]*?)(?P<noperm>_noperm)?"
_PATTERNS = {tool: re.compile(rf"^{prefix}{_TENANT}$") for tool, prefix in TOKEN_PREFIX.items()}


@dataclass(frozen=True)
class Caller:
    """Who a request authenticated as."""

    tenant: str
    can_read: bool = True  # False for ``*_noperm`` tokens
    email: str | None = None  # Jira's Basic user


@dataclass
class ToolRequest:
    method: str
    path: str  # the path below the tool's prefix, e.g. /rest/api/3/search/jql
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme, host and prefix, e.g. http://127.0.0.1:8765/jira

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def params(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]

    def json(self) -> Any:
        """The JSON body; raises ValueError when it is not JSON."""
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class ToolResponse:
    status: int
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    tenant: str | None = None  # who it answered, for the server's request log
    fault: str | None = None  # the injected fault it answered with, if any

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()


def token_for(tool: str, tenant: str, *, noperm: bool = False) -> str:
    """The sandbox token of ``tenant`` for ``tool`` (``jira``, ``clickup`` or ``azure``)."""
    return f"{TOKEN_PREFIX[tool]}{tenant}{'_noperm' if noperm else ''}"


def caller_from_token(tool: str, token: str) -> Caller | None:
    match = _PATTERNS[tool].match(token.strip())
    if match is None:
        return None
    return Caller(tenant=match.group("tenant"), can_read=match.group("noperm") is None)


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of a Basic ``Authorization`` header, or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


#: Path prefixes and the module answering them; the first match wins.
ROUTES: tuple[tuple[str, str | None, str], ...] = (
    # (prefix, a path part that must also occur, module)
    ("/jira", None, "connectors.sandbox.jira.api"),
    ("/clickup", None, "connectors.sandbox.clickup.api"),
    ("/azure", "/_apis/git/", "connectors.sandbox.azure_git.api"),
    ("/azure", None, "connectors.sandbox.azure_boards.api"),
)


def route(path: str) -> tuple[str, Any] | None:
    """``(prefix, api module)`` of the tool answering ``path``, or None for GitHub's API."""
    for prefix, part, module in ROUTES:
        if (path == prefix or path.startswith(prefix + "/")) and (part is None or part in path):
            return prefix, importlib.import_module(module)
    return None
