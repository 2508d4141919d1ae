"""`pulse mcp`: serve the MCP tools to agents over stdio or Streamable HTTP."""

from __future__ import annotations

import logging
import sys

import click


@click.command("mcp")
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: one user, token from PULSE_AGENT_TOKEN. http: Streamable HTTP at /mcp, Bearer token per request.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP only: interface to listen on.")
@click.option("--port", type=int, default=8808, show_default=True, help="HTTP only: port to listen on.")
def mcp(transport: str, host: str, port: int) -> None:
    """Serve Pulse's MCP tools (report_run, my_usage_summary) to AI agents."""
    from pulse.mcp.server import run_http, run_stdio

    # stdout carries the protocol over stdio: logs go to stderr only.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = run_stdio() if transport == "stdio" else run_http(host, port)
    sys.exit(code)
