"""Benchmark: rows per second a connector lands, sandbox → PostgreSQL over real HTTP.

Starts its own throwaway embedded PostgreSQL and sandbox, loads each tenant in full, then
once more incrementally after a day of changes, and prints (and records) the figures.

    .venv/bin/python bench/connector_throughput.py [--source github|agent_platform] [--tenants 3] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", choices=["github", "agent_platform"], default="github")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="sandbox world size (1.0 ≈ 250 PRs per tenant)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": str(free_port())})
    os.environ.pop("PULSE_DATABASE_URL", None)

    from dlt.common.pipeline import LoadInfo

    from connectors.agent_platform import agent_platform_source
    from connectors.agent_platform.pipeline import load_agent_platform
    from connectors.github import github_source
    from connectors.github.pipeline import load_github
    from connectors.loading import row_counts
    from connectors.sandbox import SandboxServer, token_for
    from pulse.db import database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.settings import get_settings

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    url = database_url(settings)
    sandbox = SandboxServer(port=0, scale=args.scale, rate_limit=1_000_000).start()
    figures: dict[str, object] = {
        "benchmark": "connector_throughput",
        "source": args.source,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "tenants": args.tenants,
        "scale": args.scale,
    }
    try:

        def load(tenant: str) -> tuple[int, float]:
            started = time.perf_counter()
            info: LoadInfo
            if args.source == "github":
                source = github_source(sandbox.url, token_for(tenant), f"{tenant}-eng")
                info = load_github(tenant, url, source, pipelines_dir=str(home / "dlt"))
            else:
                source = agent_platform_source(sandbox.url, f"aps_sandbox_{tenant}")
                info = load_agent_platform(tenant, url, source, pipelines_dir=str(home / "dlt"))
            return sum(row_counts(info).values()), time.perf_counter() - started

        full_rows = 0
        full_seconds = 0.0
        for n in range(args.tenants):
            rows, seconds = load(f"bench{n}")
            full_rows += rows
            full_seconds += seconds
            print(f"full load bench{n}: {rows} rows in {seconds:.2f} s = {rows / seconds:.0f} rows/s")
        sandbox.advance(days=1, touches_per_tenant=5)
        inc_rows = 0
        inc_seconds = 0.0
        for n in range(args.tenants):
            rows, seconds = load(f"bench{n}")
            inc_rows += rows
            inc_seconds += seconds
        figures.update(
            full_rows=full_rows,
            full_seconds=round(full_seconds, 2),
            full_rows_per_second=round(full_rows / full_seconds),
            incremental_rows=inc_rows,
            incremental_seconds_per_tenant=round(inc_seconds / args.tenants, 2),
        )
        print(
            f"\nfull loads: {full_rows} rows in {full_seconds:.2f} s = {full_rows / full_seconds:.0f} rows/s\n"
            f"incremental after a day: {inc_rows} rows, {inc_seconds / args.tenants:.2f} s per tenant"
        )
    finally:
        sandbox.stop()
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"connector_throughput_{args.source}.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
