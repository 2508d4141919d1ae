"""The agent platform's runs API, answered from a tenant's :class:`AgentPlatformWorld`.

Pure request → response functions; the HTTP server (``connectors/sandbox/server.py``) does
authentication (``Bearer aps_sandbox_<tenant>``), rate-limit headers and faults, then calls
:func:`handle` for paths under :data:`PREFIX`.

``GET /agent-platform/v1/runs?updated_after=<ISO 8601>&page_size=<1..200>&cursor=<opaque>``
lists runs by ``(updated_at, id)`` ascending, ``{"data": [...], "next_cursor": str | null}``;
the cursor carries the last ``(updated_at, id)`` seen, so paging is stable while runs change
(a run updated mid-walk moves behind the cursor and comes again on the next page).
``updated_after`` is inclusive. ``GET /agent-platform/v1/runs/{id}`` answers one run.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.agent_platform.world import AgentPlatformWorld, Run
from connectors.sandbox.github.api import ApiResponse

PREFIX = "/agent-platform"
TOKEN_PATTERN = re.compile(r"^aps_sandbox_(?P<tenant>[a-z][a-z0-9_]*)$")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

_RUNS = re.compile(r"^/agent-platform/v1/runs/?$")
_RUN = re.compile(r"^/agent-platform/v1/runs/(?P<id>[^/]+)/?$")


def token_for(tenant: str) -> str:
    """The sandbox agent-platform token of ``tenant`` (``aps_sandbox_<tenant>``)."""
    return f"aps_sandbox_{tenant}"


def tenant_from(authorization: str | None) -> str | None:
    """The tenant an ``Authorization: Bearer aps_sandbox_<tenant>`` header names, if any."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    match = TOKEN_PATTERN.match(token.strip())
    return match.group("tenant") if match else None


def error(status: int, code: str, message: str) -> ApiResponse:
    return ApiResponse(status, {"error": {"code": code, "message": message}})


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_item(run: Run) -> dict[str, Any]:
    """The JSON the API returns for ``run``."""
    return {
        "id": run.id,
        "agent_type": run.agent_type,
        "user": {"email": run.person.email, "name": run.person.name},
        "team": run.team,
        "status": run.status,
        "model": {"name": run.model_name, "version": run.model_version},
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "updated_at": iso(run.updated_at),
        "usage": {
            "input_tokens": run.input_tokens,
            "output_tokens": run.output_tokens,
            "cache_read_tokens": run.cache_read_tokens,
            "cache_write_tokens": run.cache_write_tokens,
        },
        "cost_usd": run.cost_usd,
        "error": {"category": run.error_category, "message": run.error_message} if run.error_category else None,
    }


def malformed_item(run: Run) -> dict[str, Any]:
    """``run`` broken the way a buggy upstream export would: no user email, a bad timestamp."""
    item = run_item(run)
    item["user"] = {"name": run.person.name}
    item["started_at"] = "yesterday afternoon"
    return item


def encode_cursor(run: Run) -> str:
    raw = f"{iso(run.updated_at)}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(updated_at, id)`` of a cursor; ValueError if it is none of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor") from exc
    moment, sep, run_id = raw.partition("|")
    if not sep or not run_id:
        raise ValueError("not a cursor")
    return _parse_time(moment), run_id


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))  # a '+' unencoded in a query is a space
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _param(query: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in query if key == name), None)


def handle(world: AgentPlatformWorld, path: str, query: list[tuple[str, str]], *, malformed_run: bool) -> ApiResponse:
    """Answer one authenticated ``GET`` under :data:`PREFIX` for the tenant that owns ``world``."""
    if _RUNS.match(path):
        return _list_runs(world, query, malformed_run)
    match = _RUN.match(path)
    if match:
        run = world.runs.get(match.group("id"))
        if run is None:
            return error(404, "not_found", f"no run {match.group('id')!r}")
        return ApiResponse(200, run_item(run))
    return error(404, "not_found", f"no route for {path}")


def _list_runs(world: AgentPlatformWorld, query: list[tuple[str, str]], malformed_run: bool) -> ApiResponse:
    raw_size = _param(query, "page_size")
    try:
        page_size = int(raw_size) if raw_size else DEFAULT_PAGE_SIZE
    except ValueError:
        page_size = -1
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        return error(400, "invalid_request", f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
    after: datetime | None = None
    raw_after = _param(query, "updated_after")
    if raw_after:
        try:
            after = _parse_time(raw_after)
        except ValueError:
            return error(400, "invalid_request", f"updated_after is not an ISO 8601 timestamp: {raw_after!r}")
    position: tuple[datetime, str] | None = None
    raw_cursor = _param(query, "cursor")
    if raw_cursor:
        try:
            position = decode_cursor(raw_cursor)
        except ValueError:
            return error(400, "invalid_request", "cursor is not valid; start again without one")
    runs = [
        run
        for run in world.ordered()
        if (after is None or run.updated_at >= after) and (position is None or (run.updated_at, run.id) > position)
    ]
    page = runs[:page_size]
    broken = world.malformed_target().id if malformed_run else None
    data = [malformed_item(run) if run.id == broken else run_item(run) for run in page]
    next_cursor = encode_cursor(page[-1]) if len(runs) > page_size else None
    return ApiResponse(200, {"data": data, "next_cursor": next_cursor})
