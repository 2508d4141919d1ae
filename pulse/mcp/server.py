"""The MCP server: two tools over :mod:`pulse.mcp.runs`, authenticated by agent tokens.

stdio takes its token from ``PULSE_AGENT_TOKEN`` when it starts; Streamable HTTP takes a
``Authorization: Bearer`` token on every request (the SDK's ``TokenVerifier`` hook answers 401
for a missing or unknown one). The tools look the token up again through the short-lived cache
on each call, so a revoked token stops working within the cache's TTL.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl, Field, WithJsonSchema
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette

from pulse.db import admin_engine
from pulse.mcp.auth import PulseTokenVerifier, TokenResolver
from pulse.mcp.runs import STATUSES, AgentIdentity, RunError, RunStore
from pulse.settings import Settings, get_settings

log = logging.getLogger(__name__)

TOKEN_ENV = "PULSE_AGENT_TOKEN"
SERVER_NAME = "pulse"
INSTRUCTIONS = (
    "Pulse records the runs of AI coding agents for engineering analytics. Call report_run when a run "
    "starts and again when it ends (same run_id); my_usage_summary shows the token user's own usage."
)

# The schemas clients see; the values are checked by pulse.mcp.runs.validate_run alone, so every
# rejection carries one clear message instead of a pydantic dump.
Status = Annotated[Any, WithJsonSchema({"type": "string", "enum": list(STATUSES)})]
Timestamp = Annotated[Any, WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalTimestamp = Annotated[Any, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]
Tokens = Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 0, "description": "Token count; default 0."})]
Cost = Annotated[Any, WithJsonSchema({"type": ["number", "null"], "minimum": 0, "description": "Cost in USD."})]
Text = Annotated[Any, WithJsonSchema({"type": "string"})]
OptionalText = Annotated[Any, WithJsonSchema({"type": ["string", "null"]})]


class Recorded(TypedDict):
    run_id: str
    status: str


class StartupError(RuntimeError):
    """The server cannot start; ``exit_code`` says why (2: bad token, 1: anything else)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _received_arguments(ctx: Context, given: Mapping[str, Any]) -> dict[str, Any]:
    """The tool arguments as the client sent them; the validated values outside a request."""
    try:
        params = ctx.request_context.params
    except ValueError:
        params = None
    arguments = params.get("arguments") if params else None
    if isinstance(arguments, dict):
        return arguments
    return {name: value for name, value in given.items() if value is not None}


def build_server(
    store: RunStore,
    resolver: TokenResolver,
    current_token: Callable[[], str | None],
    *,
    auth: AuthSettings | None = None,
) -> MCPServer:
    """The MCP server with its tools; ``current_token`` says which token the caller presented."""
    server: MCPServer = MCPServer(
        SERVER_NAME,
        title="Pulse",
        instructions=INSTRUCTIONS,
        auth=auth,
        token_verifier=PulseTokenVerifier(resolver) if auth is not None else None,
    )

    def identify() -> AgentIdentity:
        identity = resolver.resolve(current_token())
        if identity is None:
            raise ToolError("The agent token is no longer valid (revoked, or its tenant deactivated); get a new one.")
        return identity

    @server.tool(
        description=(
            "Report one agent run, or an update of it: call with status running when it starts and again with "
            "succeeded/failed/cancelled (same run_id) when it ends. Timestamps are ISO 8601 with a time zone. "
            "The run is recorded for the user the token acts for. Returns {run_id, status: 'recorded'}."
        )
    )
    def report_run(
        ctx: Context,
        agent_type: Annotated[Text, Field(description="Kind of agent, e.g. claude_code, codex, copilot.")],
        status: Status,
        started_at: Annotated[Timestamp, Field(description="When the run started, e.g. 2025-06-01T09:30:00Z.")],
        model_name: Annotated[Text, Field(description="Model used, e.g. claude-sonnet-4.")],
        run_id: Annotated[OptionalText, Field(description="Your id of the run; omit to get a new one.")] = None,
        ended_at: Annotated[OptionalTimestamp, Field(description="When it ended; not before started_at.")] = None,
        model_version: OptionalText = None,
        input_tokens: Tokens = 0,
        output_tokens: Tokens = 0,
        cache_read_tokens: Tokens = 0,
        cache_write_tokens: Tokens = 0,
        cost_usd: Cost = None,
        error_category: OptionalText = None,
        error_message: OptionalText = None,
        team: Annotated[OptionalText, Field(description="Team the work was for, if any.")] = None,
        user_email: Annotated[OptionalText, Field(description="Optional; must be the token's own user.")] = None,
    ) -> Recorded:
        started = time.perf_counter()
        arguments = _received_arguments(ctx, {k: v for k, v in locals().items() if k not in ("ctx", "started")})
        identity = identify()
        try:
            recorded = store.record(identity, arguments)
        except RunError as exc:
            raise ToolError(str(exc)) from exc
        log.debug("report_run %s recorded in %.2f ms", recorded["run_id"], 1000 * (time.perf_counter() - started))
        return Recorded(run_id=recorded["run_id"], status=recorded["status"])

    @server.tool(
        description=(
            "Your own agent usage over the last `days` days (default 30): runs, succeeded, failed, success rate "
            "(succeeded / finished, in percent), input/output/cache tokens and cost in USD, in total and by agent type."
        )
    )
    def my_usage_summary(
        days: Annotated[int, Field(ge=1, le=3660, description="Length of the period, in days.")] = 30,
    ) -> dict[str, Any]:
        identity = identify()
        try:
            return store.summary(identity, days, datetime.now(UTC))
        except RunError as exc:
            raise ToolError(str(exc)) from exc

    return server


def stdio_server(settings: Settings | None = None, environ: Mapping[str, str] = os.environ) -> MCPServer:
    """The stdio server for the token in ``PULSE_AGENT_TOKEN``; StartupError if it is missing or invalid."""
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise StartupError(
            f"{TOKEN_ENV} is not set. Put an agent token (pulse_agent_…) for your user in the MCP server's "
            "environment; see pulse/mcp/README.md.",
            exit_code=2,
        )
    from pulse.db.embedded import EmbeddedPostgresError

    try:
        engine = admin_engine(settings or get_settings())
        resolver = TokenResolver(engine)
        identity = resolver.resolve(token)
    except (SQLAlchemyError, EmbeddedPostgresError) as exc:
        raise StartupError(f"Cannot reach the Pulse database ({type(exc).__name__}): {exc}", exit_code=1) from None
    if identity is None:
        raise StartupError(
            f"{TOKEN_ENV} was refused: it is not a valid agent token (unknown, revoked, another kind, or its "
            "tenant is inactive). Ask your Pulse admin for a new agent token.",
            exit_code=2,
        )
    log.info("Pulse MCP server (stdio) for %s in tenant %s", identity.user_email, identity.tenant_id)
    return build_server(RunStore(engine), resolver, lambda: token)


def http_app(host: str, port: int, settings: Settings | None = None) -> Starlette:
    """The Streamable HTTP app at ``/mcp``; every request needs ``Authorization: Bearer <agent token>``."""
    engine = admin_engine(settings or get_settings())
    resolver = TokenResolver(engine)

    def current_token() -> str | None:
        access = get_access_token()
        return access.token if access is not None else None

    auth = AuthSettings(issuer_url=AnyHttpUrl(f"http://{host}:{port}"), resource_server_url=None)
    server = build_server(RunStore(engine), resolver, current_token, auth=auth)
    return server.streamable_http_app(host=host)


def run_stdio(settings: Settings | None = None) -> int:
    """Serve over stdio until the client disconnects; 2 (with a message on stderr) for a bad token."""
    try:
        server = stdio_server(settings)
    except StartupError as exc:
        print(f"pulse mcp: {exc}", file=sys.stderr)
        return exc.exit_code
    server.run("stdio")
    return 0


def run_http(host: str, port: int, settings: Settings | None = None) -> int:
    import uvicorn

    app = http_app(host, port, settings)
    log.info("Pulse MCP server at http://%s:%d/mcp", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
