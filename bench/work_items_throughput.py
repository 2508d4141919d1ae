"""Benchmark: rows per second and peak memory of the tracker and Azure DevOps connectors.

One tenant whose planning world holds about ``--work-items`` work items (100,000 by default)
is served by the sandbox over real HTTP; each connector loads it in full into a throwaway
embedded PostgreSQL, in a child process of its own so that its peak memory (max RSS) is the
connector's alone and not the sandbox's. Then one incremental load after a day of changes.

    .venv/bin/python bench/work_items_throughput.py [--tools jira,clickup,azure_boards,azure_devops_git]
        [--work-items 100000] [--pr-scale 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

RESULTS = Path(__file__).resolve().parent / "results"
TOOLS = ("jira", "clickup", "azure_boards", "azure_devops_git")
TENANT = "benchco"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def source_spec(
    tool: str, sandbox_url: str, tenant: str, project: str = ""
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(base URL, credentials, config) of the tenant's source for ``tool`` on the sandbox
    (``project``: the Azure DevOps project that holds the tenant's repositories)."""
    from connectors.sandbox.tools import token_for

    if tool == "jira":
        return f"{sandbox_url}/jira", {"email": f"bench@{tenant}.example", "token": token_for("jira", tenant)}, {}
    if tool == "clickup":
        return f"{sandbox_url}/clickup", {"token": token_for("clickup", tenant)}, {}
    config: dict[str, Any] = {}
    if tool == "azure_devops_git":
        config["project"] = project
    return f"{sandbox_url}/azure/{tenant}-eng", {"token": token_for("azure", tenant)}, config


def _load_in_child(tool: str, sandbox_url: str, db_url: str, pipelines_dir: str, project: str, queue: Any) -> None:
    """Run one load; report rows, seconds and this process's peak RSS."""
    import importlib

    from connectors.loading import row_counts

    module = importlib.import_module(f"connectors.{tool}")
    pipeline = importlib.import_module(f"connectors.{tool}.pipeline")
    base_url, credentials, config = source_spec(tool, sandbox_url, TENANT, project)
    started = time.perf_counter()
    source = getattr(module, f"{tool}_source")(base_url=base_url, credentials=credentials, config=config)
    info = getattr(pipeline, f"load_{tool}")(TENANT, db_url, source, pipelines_dir=pipelines_dir)
    seconds = time.perf_counter() - started
    counts = row_counts(info)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    queue.put({"rows": sum(counts.values()), "by_table": counts, "seconds": seconds, "peak_rss_mib": peak_mib})


def run_load(tool: str, sandbox_url: str, db_url: str, pipelines_dir: str, project: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_load_in_child, args=(tool, sandbox_url, db_url, pipelines_dir, project, queue))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the {tool} load failed (exit code {child.exitcode}); see the output above")
    result: dict[str, Any] = queue.get(timeout=10)
    return result


def record(figures: dict[str, Any]) -> None:
    """Write the figures so far (after each load, so a long run that is stopped keeps what it
    measured); a run of some tools keeps the other tools' figures of the same world."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "work_items_throughput.json"
    tools = dict(figures["tools"])
    if path.exists():
        earlier = json.loads(path.read_text())
        if earlier.get("work_items") == figures["work_items"]:
            tools = {**earlier.get("tools", {}), **tools}
    path.write_text(json.dumps({**figures, "tools": tools}, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--work-items", type=int, default=100_000)
    parser.add_argument("--pr-scale", type=float, default=8.0, help="GitHub world scale (1.0 ≈ 250 pull requests)")
    args = parser.parse_args()
    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]

    home = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": str(free_port())})
    os.environ.pop("PULSE_DATABASE_URL", None)

    from connectors.sandbox import SandboxServer
    from connectors.sandbox.azure_git.payloads import git_project
    from connectors.sandbox.github.world import github_world
    from connectors.sandbox.work.world import work_world
    from pulse.db import database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.settings import get_settings

    # Calibrate the world's scale to the number of work items asked for (twice: the count
    # does not grow quite in proportion, since small sprints round their item counts).
    work_scale = 1.0
    for _ in range(2):
        probe = work_world(github_world(TENANT, scale=args.pr_scale), scale=work_scale, link_pull_requests=False)
        work_scale *= args.work_items / len(probe.items)

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    db_url = database_url(settings)
    started = time.perf_counter()
    sandbox = SandboxServer(port=0, scale=args.pr_scale, work_scale=work_scale, rate_limit=10**9).start()
    sandbox.tool_rate_limit = 10**9
    sandbox.clickup_rate_limit = 10**9  # type: ignore[attr-defined]
    world = sandbox.work_world(TENANT)
    project = git_project(world)
    generated = time.perf_counter() - started
    print(
        f"sandbox world of {TENANT}: {len(world.items)} work items, {world.counts()['changes']} changes, "
        f"{sum(1 for _ in sandbox.world(TENANT).pull_requests())} pull requests (generated in {generated:.1f} s)"
    )
    figures: dict[str, Any] = {
        "benchmark": "work_items_throughput",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "work_items": len(world.items),
        "changes": world.counts()["changes"],
        "pull_requests": sum(1 for _ in sandbox.world(TENANT).pull_requests()),
        "tools": {},
    }
    try:
        for tool in tools:
            full = run_load(tool, sandbox.url, db_url, str(home / "dlt"), project)
            print(
                f"{tool}: full load {full['rows']} rows in {full['seconds']:.1f} s = "
                f"{full['rows'] / full['seconds']:.0f} rows/s, peak RSS {full['peak_rss_mib']:.0f} MiB"
            )
            figures["tools"][tool] = {
                "full_rows": full["rows"],
                "full_rows_by_table": full["by_table"],
                "full_seconds": round(full["seconds"], 1),
                "full_rows_per_second": round(full["rows"] / full["seconds"]),
                "full_peak_rss_mib": round(full["peak_rss_mib"]),
            }
            record(figures)
        sandbox.advance(days=1, touches_per_tenant=20)
        for tool in tools:
            inc = run_load(tool, sandbox.url, db_url, str(home / "dlt"), project)
            print(f"{tool}: incremental after a day {inc['rows']} rows in {inc['seconds']:.1f} s")
            figures["tools"][tool].update(incremental_rows=inc["rows"], incremental_seconds=round(inc["seconds"], 1))
            record(figures)
    finally:
        sandbox.stop()
        cluster.stop()
    record(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
