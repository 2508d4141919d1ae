"""Benchmark: time from a Claude Code event reaching `pulse ingest serve` to its row in
int_agent_runs, with the real machinery: the OTLP receiver over HTTP, `dagster dev` (its
daemon evaluates agent_data_sensor and launches the refresh run), dbt.

    .venv/bin/python bench/agent_freshness.py [--samples 3]

Goal: under 60 s. The first sample after start-up is a warm-up and is reported separately.
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
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

RESULTS = Path(__file__).resolve().parent / "results"
TENANT = "fresh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def otlp_event(prompt_id: str) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    def kv(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    record = LogRecord(
        time_unix_nano=time.time_ns(),
        attributes=[
            kv("event.name", "api_request"),
            kv("prompt.id", prompt_id),
            kv("session.id", "bench"),
            kv("user.email", "bench@fresh.example"),
            kv("model", "claude-sonnet-4-5"),
            kv("input_tokens", "1200"),
            kv("output_tokens", "300"),
            kv("cache_read_tokens", "0"),
            kv("cache_creation_tokens", "0"),
            kv("duration_ms", "900"),
        ],
    )
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])
    return request.SerializeToString()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pulse-fresh-"))
    os.environ.update(
        {"PULSE_HOME": str(home), "PULSE_DB_PORT": str(free_port()), "DAGSTER_HOME": str(home / "dagster")}
    )
    os.environ.pop("PULSE_DATABASE_URL", None)

    import dagster as dg
    from sqlalchemy import text

    from orchestration.lib.instance import ensure_dagster_home
    from pulse import control
    from pulse.db import admin_engine, database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.db.migrate import migrate
    from pulse.dbt import ensure_manifest
    from pulse.demo import service_env
    from pulse.services import start_service, stop_service
    from pulse.settings import PROJECT_ROOT, get_settings
    from pulse.telemetry.server import build_receiver, start_server
    from pulse.tokens import create_token

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    url = database_url(settings)
    migrate(settings)
    ensure_manifest()
    engine = admin_engine(settings)
    with engine.begin() as conn:
        control.add_tenant(conn, TENANT, "Freshness", actor="bench")
        token = create_token(conn, TENANT, "ingest", name="bench", actor="bench")
    ensure_dagster_home(settings)
    dg.DagsterInstance.get().add_dynamic_partitions("tenant", [TENANT])
    receiver = start_server(build_receiver(url), port=0)
    receiver_url = f"http://127.0.0.1:{receiver.server_address[1]}/v1/logs"
    logs = home / "logs"
    logs.mkdir()
    dagster_port = free_port()
    dagster = start_service(
        [
            str(Path(sys.executable).with_name("dagster")),
            "dev",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(dagster_port),
        ],
        service_env(settings),
        logs / "dagster.log",
    )
    latencies: list[float] = []
    warmup = None
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{dagster_port}/server_info", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dagster dev did not start; see {logs / 'dagster.log'}") from None
                time.sleep(1)
        for sample in range(args.samples + 1):
            prompt_id = f"bench-{sample}-{time.time_ns()}"
            request = urllib.request.Request(
                receiver_url,
                data=otlp_event(prompt_id),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"},
            )
            sent = time.monotonic()
            urllib.request.urlopen(request, timeout=10).read()
            while True:
                with engine.connect() as conn:
                    found = (
                        conn.execute(
                            text("select 1 from intermediate.int_agent_runs where agent_run_id = :id"),
                            {"id": f"claude_code:prompt:{prompt_id}"},
                        ).first()
                        if conn.execute(text("select to_regclass('intermediate.int_agent_runs')")).scalar()
                        else None
                    )
                if found:
                    break
                if time.monotonic() - sent > args.timeout:
                    raise RuntimeError(f"event {prompt_id} not in int_agent_runs after {args.timeout} s")
                time.sleep(0.5)
            elapsed = time.monotonic() - sent
            print(f"{'warm-up' if sample == 0 else f'sample {sample}'}: {elapsed:.1f} s from POST to int_agent_runs")
            if sample == 0:
                warmup = elapsed
            else:
                latencies.append(elapsed)
    finally:
        stop_service(dagster)
        receiver.shutdown()
        receiver.server_close()
        cluster.stop()
    figures = {
        "benchmark": "agent_freshness",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "path": "OTLP POST -> raw_claude_code -> dagster dev daemon (agent_data_sensor, 10 s) -> dbt -> int_agent_runs",
        "warmup_seconds": round(warmup or 0, 1),
        "samples_seconds": [round(x, 1) for x in latencies],
        "median_seconds": round(statistics.median(latencies), 1),
        "max_seconds": round(max(latencies), 1),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agent_freshness.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
