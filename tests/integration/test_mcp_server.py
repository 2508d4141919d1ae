"""`pulse mcp` end to end: real MCP clients (stdio subprocess, Streamable HTTP, in-process) and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import requests
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent
from sqlalchemy import text

from pulse import control
from pulse.db import admin_engine
from pulse.mcp.auth import TokenResolver
from pulse.mcp.runs import RunStore
from pulse.mcp.server import TOKEN_ENV, build_server
from pulse.tokens import create_token, revoke_token
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
ACTOR = "test:mcp"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Agents:
    """Agent tokens: ana and ben in tenant mcp_a, cleo in mcp_b, plus one revoked token."""

    ana: str
    ben: str
    cleo: str
    revoked: str


@pytest.fixture(scope="module")
def agents(settings: object) -> Agents:
    with admin_engine().begin() as conn:
        control.add_tenant(conn, "mcp_a", "MCP A", actor=ACTOR)
        control.add_tenant(conn, "mcp_b", "MCP B", actor=ACTOR)
        control.add_user(conn, "ana@mcp-a.test", "Ana Alves", actor=ACTOR)
        control.add_user(conn, "ben@mcp-a.test", "Ben Brandt", actor=ACTOR)
        control.add_user(conn, "cleo@mcp-b.test", "Cleo Chen", actor=ACTOR)

        def token(tenant: str, email: str) -> str:
            return create_token(conn, tenant, "agent", name=f"{email} laptop", actor=ACTOR, user_email=email)

        revoked = token("mcp_a", "ben@mcp-a.test")
        revoked_id = conn.execute(text("select max(token_id) from control.api_tokens")).scalar_one()
        revoke_token(conn, revoked_id, actor=ACTOR)
        return Agents(
            ana=token("mcp_a", "ana@mcp-a.test"),
            ben=token("mcp_a", "ben@mcp-a.test"),
            cleo=token("mcp_b", "cleo@mcp-b.test"),
            revoked=revoked,
        )


def server_env(token: str | None) -> dict[str, str]:
    """What an MCP client would put in the server's environment: the database settings and the token."""
    names = ("PULSE_HOME", "PULSE_DB_PORT", "PULSE_SECRET_KEY", "PULSE_DATABASE_URL", "PATH")
    env = {name: os.environ[name] for name in names if name in os.environ}
    if token is not None:
        env[TOKEN_ENV] = token
    return env


def run_with(client: Client, body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with client:
            return await body(client)

    return anyio.run(main)


def in_process(token: str) -> Client:
    engine = admin_engine()
    return Client(build_server(RunStore(engine), TokenResolver(engine), lambda: token))


def stored(tenant: str, run_id: str) -> list[dict[str, Any]]:
    with admin_engine().connect() as conn:
        rows = conn.execute(text(f"select * from raw_agent_mcp__{tenant}.runs where run_id = :r"), {"r": run_id})
        return [dict(row._mapping) for row in rows]


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_stdio_round_trip_records_updates_and_summarises(agents: Agents) -> None:
    started = NOW - timedelta(hours=2)
    first = {
        "run_id": "stdio-run-1",
        "agent_type": "claude_code",
        "status": "running",
        "started_at": iso(started),
        "model_name": "claude-sonnet-4",
        "model_version": "20250514",
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_read_tokens": 50,
        "cache_write_tokens": 10,
        "team": "platform",
    }
    finished = {**first, "status": "succeeded", "ended_at": iso(started + timedelta(minutes=5)), "cost_usd": 0.12}
    failed = {
        "run_id": "stdio-run-2",
        "agent_type": "claude_code",
        "status": "failed",
        "started_at": iso(NOW - timedelta(days=3)),
        "ended_at": iso(NOW - timedelta(days=3) + timedelta(minutes=1)),
        "model_name": "claude-sonnet-4",
        "input_tokens": 300,
        "output_tokens": 40,
        "cost_usd": 0.03,
        "error_category": "tool_error",
        "error_message": "pytest exited with 1",
    }
    codex = {
        "agent_type": "codex",
        "status": "succeeded",
        "started_at": iso(NOW - timedelta(days=10)),
        "model_name": "gpt-5",
        "input_tokens": 500,
        "output_tokens": 100,
        "cache_read_tokens": 20,
        "cache_write_tokens": 5,
        "cost_usd": "0.25",
    }
    old = {**codex, "run_id": "stdio-run-old", "started_at": iso(NOW - timedelta(days=40)), "cost_usd": 1}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pulse.mcp"], env=server_env(agents.ana), cwd=str(REPO)
    )

    async def session(client: Client) -> dict[str, Any]:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        recorded = await client.call_tool("report_run", first)
        after_first = stored("mcp_a", "stdio-run-1")
        updated = await client.call_tool("report_run", finished)
        others = [await client.call_tool("report_run", args) for args in (failed, codex, old)]
        summary = await client.call_tool("my_usage_summary", {})
        summary_60 = await client.call_tool("my_usage_summary", {"days": 60})
        return {
            "tools": tools,
            "recorded": recorded,
            "after_first": after_first,
            "updated": updated,
            "others": others,
            "summary": summary,
            "summary_60": summary_60,
        }

    out = run_with(Client(params, read_timeout_seconds=60), session)

    tools = out["tools"]
    assert set(tools) == {"report_run", "my_usage_summary"}
    schema = tools["report_run"].input_schema
    assert set(schema["required"]) == {"agent_type", "status", "started_at", "model_name"}
    assert set(schema["properties"]) == {
        "run_id",
        "agent_type",
        "status",
        "started_at",
        "ended_at",
        "model_name",
        "model_version",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "error_category",
        "error_message",
        "team",
        "user_email",
    }
    assert schema["properties"]["status"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert tools["my_usage_summary"].input_schema.get("required", []) == []

    assert out["recorded"].structured_content == {"run_id": "stdio-run-1", "status": "recorded"}
    [row] = out["after_first"]
    assert {key: row[key] for key in first if key not in ("started_at",)} == {
        key: value for key, value in first.items() if key != "started_at"
    }
    assert row["started_at"] == started
    assert (row["user_email"], row["user_name"]) == ("ana@mcp-a.test", "Ana Alves")
    assert (row["ended_at"], row["cost_usd"], row["error_category"], row["error_message"]) == (None, None, None, None)
    assert row["payload"] == first
    assert row["created_at"] == row["updated_at"]

    assert out["updated"].structured_content == {"run_id": "stdio-run-1", "status": "recorded"}
    [row2] = stored("mcp_a", "stdio-run-1")
    assert row2["status"] == "succeeded"
    assert row2["ended_at"] == started + timedelta(minutes=5)
    assert row2["cost_usd"] == Decimal("0.12")
    assert row2["payload"] == finished
    assert row2["created_at"] == row["created_at"]
    assert row2["updated_at"] > row["updated_at"]
    assert (row2["input_tokens"], row2["output_tokens"], row2["cache_read_tokens"], row2["cache_write_tokens"]) == (
        1000,
        200,
        50,
        10,
    )

    generated = out["others"][1].structured_content["run_id"]
    assert len(generated) == 36
    assert stored("mcp_a", generated)[0]["cost_usd"] == Decimal("0.25")
    # The run_id was generated, so the stored payload is exactly what was sent (no run_id).
    assert stored("mcp_a", generated)[0]["payload"] == codex

    summary = out["summary"].structured_content
    assert summary["user_email"] == "ana@mcp-a.test"
    assert summary["days"] == 30
    # 3 runs in 30 days: run-1 succeeded, run-2 failed, codex succeeded → 2 / 3 finished = 66.7 %.
    expected_totals = {
        "runs": 3,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "in_progress": 0,
        "success_rate_pct": 66.7,
        "input_tokens": 1000 + 300 + 500,
        "output_tokens": 200 + 40 + 100,
        "cache_read_tokens": 50 + 0 + 20,
        "cache_write_tokens": 10 + 0 + 5,
        "cost_usd": 0.40,
        "runs_without_cost": 0,
    }
    assert {key: summary[key] for key in expected_totals} == expected_totals
    assert summary["by_agent_type"]["claude_code"] == {
        "runs": 2,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
        "in_progress": 0,
        "success_rate_pct": 50.0,
        "input_tokens": 1300,
        "output_tokens": 240,
        "cache_read_tokens": 50,
        "cache_write_tokens": 10,
        "cost_usd": 0.15,
        "runs_without_cost": 0,
    }
    assert summary["by_agent_type"]["codex"]["runs"] == 1
    assert summary["by_agent_type"]["codex"]["success_rate_pct"] == 100.0
    summary_60 = out["summary_60"].structured_content
    assert (summary_60["runs"], summary_60["succeeded"], summary_60["cost_usd"]) == (4, 3, 1.40)


def test_invalid_arguments_are_tool_errors_and_write_nothing(agents: Agents) -> None:
    good = {
        "agent_type": "claude_code",
        "status": "succeeded",
        "started_at": "2025-06-01T09:00:00Z",
        "model_name": "claude-sonnet-4",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "run_id": "bad-status", "status": "done"}, "status"),
        ({**good, "run_id": "bad-tokens", "input_tokens": -5}, "input_tokens"),
        ({**good, "run_id": "bad-type", "output_tokens": "many"}, "output_tokens"),
        ({**good, "run_id": "bad-order", "ended_at": "2025-06-01T08:00:00Z"}, "is before started_at"),
        ({**good, "run_id": "bad-naive", "started_at": "2025-06-01T09:00:00"}, "time zone"),
        ({**good, "run_id": "bad-date", "started_at": "yesterday"}, "started_at"),
        ({**good, "run_id": "bad-cost", "cost_usd": -1}, "cost_usd"),
        ({**good, "run_id": "bad-user", "user_email": "ben@mcp-a.test"}, "user_email must be the token's own user"),
        ({**good, "run_id": "bad-missing", "model_name": None}, "model_name"),
        ({**good, "run_id": "bad-empty", "agent_type": "  "}, "agent_type must not be empty"),
    ]

    async def session(client: Client) -> list[CallToolResult]:
        return [await client.call_tool("report_run", arguments) for arguments, _ in cases]

    results = run_with(in_process(agents.ana), session)
    for (arguments, reason), result in zip(cases, results, strict=True):
        assert reason in error_text(result), (arguments, error_text(result))
        assert stored("mcp_a", arguments["run_id"]) == []
    # The token's own address (any case) is accepted.
    ok = run_with(
        in_process(agents.ana),
        lambda c: c.call_tool("report_run", {**good, "run_id": "own-email", "user_email": "Ana@MCP-A.test"}),
    )
    assert not ok.is_error
    assert stored("mcp_a", "own-email")[0]["user_email"] == "ana@mcp-a.test"


def test_users_and_tenants_are_isolated(agents: Agents) -> None:
    run = {
        "run_id": "shared-id",
        "agent_type": "claude_code",
        "status": "succeeded",
        "started_at": iso(NOW - timedelta(hours=1)),
        "model_name": "claude-opus-4",
        "input_tokens": 7,
        "cost_usd": 2.5,
    }
    assert not run_with(in_process(agents.ana), lambda c: c.call_tool("report_run", run)).is_error
    taken = run_with(in_process(agents.ben), lambda c: c.call_tool("report_run", {**run, "status": "failed"}))
    assert "already reported by another user" in error_text(taken)
    assert "ana@" not in error_text(taken)
    [row] = stored("mcp_a", "shared-id")
    assert (row["user_email"], row["status"]) == ("ana@mcp-a.test", "succeeded")

    # Ben's own run is his; his summary holds only it, none of Ana's.
    ben_run = {**run, "run_id": "ben-1", "input_tokens": 11, "cost_usd": 0.5}
    assert not run_with(in_process(agents.ben), lambda c: c.call_tool("report_run", ben_run)).is_error
    summary = run_with(in_process(agents.ben), lambda c: c.call_tool("my_usage_summary", {"days": 7}))
    figures = summary.structured_content
    assert (figures["user_email"], figures["runs"], figures["input_tokens"], figures["cost_usd"]) == (
        "ben@mcp-a.test",
        1,
        11,
        0.5,
    )

    # Another tenant has its own table: the same run_id is a different run there.
    assert not run_with(in_process(agents.cleo), lambda c: c.call_tool("report_run", run)).is_error
    [cleo_row] = stored("mcp_b", "shared-id")
    assert cleo_row["user_email"] == "cleo@mcp-b.test"
    assert stored("mcp_a", "shared-id")[0]["user_email"] == "ana@mcp-a.test"
    cleo = run_with(in_process(agents.cleo), lambda c: c.call_tool("my_usage_summary", {}))
    assert (cleo.structured_content["runs"], cleo.structured_content["cost_usd"]) == (1, 2.5)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "PULSE_AGENT_TOKEN is not set"),
        ("pulse_agent_not-a-real-token", "PULSE_AGENT_TOKEN was refused"),
        ("revoked", "PULSE_AGENT_TOKEN was refused"),
    ],
)
def test_stdio_refuses_to_start_without_a_valid_token(agents: Agents, token: str | None, message: str) -> None:
    token = agents.revoked if token == "revoked" else token
    result = subprocess.run(
        [sys.executable, "-m", "pulse.mcp"],
        env=server_env(token),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    if token:
        assert token not in result.stderr


@pytest.fixture(scope="module")
def http_url(agents: Agents) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pulse.mcp", "--transport", "http", "--port", str(port)],
        env=server_env(None),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the HTTP MCP server did not start within 60 s"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            log = process.stderr.read()
            assert agents.ana not in log and agents.ben not in log


def test_http_with_a_valid_token_records_the_run(agents: Agents, http_url: str) -> None:
    run = {
        "run_id": "http-run-1",
        "agent_type": "copilot",
        "status": "succeeded",
        "started_at": iso(NOW - timedelta(minutes=30)),
        "ended_at": iso(NOW - timedelta(minutes=20)),
        "model_name": "gpt-4.1",
        "input_tokens": 42,
        "output_tokens": 8,
        "cost_usd": 0.01,
    }

    async def session(client: Client) -> tuple[list[str], CallToolResult, CallToolResult]:
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        return tools, await client.call_tool("report_run", run), await client.call_tool("my_usage_summary", {})

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {agents.ben}"}, timeout=30)
    tools, recorded, summary = run_with(Client(streamable_http_client(http_url, http_client=http)), session)
    assert tools == ["my_usage_summary", "report_run"]
    assert recorded.structured_content == {"run_id": "http-run-1", "status": "recorded"}
    [row] = stored("mcp_a", "http-run-1")
    assert (row["user_email"], row["agent_type"], row["input_tokens"], row["cost_usd"]) == (
        "ben@mcp-a.test",
        "copilot",
        42,
        Decimal("0.01"),
    )
    assert summary.structured_content["user_email"] == "ben@mcp-a.test"
    assert summary.structured_content["by_agent_type"]["copilot"]["runs"] == 1


@pytest.mark.parametrize("authorization", [None, "Bearer pulse_agent_wrong", "Bearer revoked", "Basic YTpi"])
def test_http_without_a_valid_token_is_401(agents: Agents, http_url: str, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization.replace("revoked", agents.revoked)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    response = requests.post(http_url, json=initialize, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
