"""Benchmark: server-side time of one `report_run` (pulse mcp), against a throwaway PostgreSQL.

Times N reports (a) through the storage function directly (validate + upsert, one transaction)
and (b) through the MCP server's call path in-process (the SDK's in-memory client): the server
side is timed by a server middleware around the tools/call handler; the client round trip is
shown too. Half the reports are new runs, half update a run reported before (running → succeeded).

    .venv/bin/python bench/mcp_report.py [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_MS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 3),
        "p95_ms": round(cuts[94], 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(max(samples), 3),
    }


def reports(prefix: str, calls: int) -> list[dict[str, Any]]:
    """``calls`` reports: each run is reported running, then succeeded."""
    started = datetime.now(UTC) - timedelta(hours=1)
    out: list[dict[str, Any]] = []
    for n in range(calls):
        run = {
            "run_id": f"{prefix}-{n // 2}",
            "agent_type": "claude_code",
            "status": "running",
            "started_at": started.isoformat(),
            "model_name": "claude-sonnet-4",
            "input_tokens": 1200 + n,
            "output_tokens": 300,
        }
        if n % 2:
            run.update(status="succeeded", ended_at=(started + timedelta(minutes=3)).isoformat(), cost_usd=0.021)
        out.append(run)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": str(free_port())})
    os.environ.setdefault("PULSE_SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.pop("PULSE_DATABASE_URL", None)

    import anyio
    from mcp import Client

    from pulse import control
    from pulse.db import admin_engine, database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.db.migrate import migrate
    from pulse.mcp.auth import TokenResolver
    from pulse.mcp.runs import RunStore
    from pulse.mcp.server import build_server
    from pulse.settings import get_settings
    from pulse.tokens import create_token

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    database_url(settings)
    figures: dict[str, Any] = {
        "benchmark": "mcp_report",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "calls": args.calls,
        "goal_p50_ms": GOAL_MS,
    }
    try:
        migrate(settings)
        engine = admin_engine(settings)
        with engine.begin() as conn:
            control.add_tenant(conn, "bench_mcp", "Bench MCP", actor="bench")
            control.add_user(conn, "agent.user@bench.test", "Agent User", actor="bench")
            token = create_token(
                conn, "bench_mcp", "agent", name="bench", actor="bench", user_email="agent.user@bench.test"
            )
        resolver = TokenResolver(engine)
        store = RunStore(engine)
        identity = resolver.resolve(token)
        assert identity is not None

        # Warm up: create the table, fill the pool and the token cache.
        for arguments in reports("warm", 20):
            store.record(identity, arguments)

        direct: list[float] = []
        for arguments in reports("direct", args.calls):
            started = time.perf_counter()
            store.record(identity, arguments)
            direct.append(1000 * (time.perf_counter() - started))

        server = build_server(store, resolver, lambda: token)
        server_side: list[float] = []

        async def timer(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
            if ctx.method != "tools/call":
                return await call_next(ctx)
            started = time.perf_counter()
            try:
                return await call_next(ctx)
            finally:
                server_side.append(1000 * (time.perf_counter() - started))

        server.middleware.append(timer)
        round_trip: list[float] = []

        async def through_mcp() -> None:
            async with Client(server) as client:
                for arguments in reports("mcp-warm", 20):
                    await client.call_tool("report_run", arguments)
                server_side.clear()
                for arguments in reports("mcp", args.calls):
                    started = time.perf_counter()
                    result = await client.call_tool("report_run", arguments)
                    round_trip.append(1000 * (time.perf_counter() - started))
                    assert not result.is_error, result

        anyio.run(through_mcp)
        with engine.connect() as conn:
            stored: int = conn.execute(text("select count(*) from raw_agent_mcp__bench_mcp.runs")).scalar_one()
        expected_rows = 10 + 10 + 2 * ((args.calls + 1) // 2)
        assert stored == expected_rows, (stored, expected_rows)

        figures["storage_function"] = percentiles(direct)
        figures["mcp_server_side"] = percentiles(server_side)
        figures["mcp_client_round_trip"] = percentiles(round_trip)
        for label, key in (
            ("storage function (validate + upsert)", "storage_function"),
            ("MCP tools/call, server side", "mcp_server_side"),
            ("MCP round trip, in-memory client", "mcp_client_round_trip"),
        ):
            f = figures[key]
            print(f"{label:40s} p50 {f['p50_ms']:.2f} ms  p95 {f['p95_ms']:.2f} ms  p99 {f['p99_ms']:.2f} ms")
        figures["meets_goal"] = figures["mcp_server_side"]["p50_ms"] < GOAL_MS
    finally:
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mcp_report.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
