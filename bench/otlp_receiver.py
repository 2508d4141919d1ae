"""Benchmark: Claude Code events per second the OTLP receiver commits, and request latency.

Starts a throwaway embedded PostgreSQL and the receiver in this process; a second process
sends protobuf ExportLogsServiceRequests (batches of Claude Code-like events) over loopback
on several concurrent keep-alive connections, for a bounded time. Prints and records
events/s accepted and request latency p50/p95/p99.

    .venv/bin/python bench/otlp_receiver.py [--seconds 20] [--connections 8] [--batch 50]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TENANT = "bench_otlp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_batch(worker: int, seq: int, size: int) -> bytes:
    """One ExportLogsServiceRequest of ``size`` api_request events, unique per (worker, seq)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(
        [
            kv("service.name", "claude-code"),
            kv("organization.id", "org-bench"),
            kv("user.email", f"dev{worker}@example.com"),
            kv("team", "platform"),
        ]
    )
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "com.anthropic.claude_code.events"
    base = time.time_ns()
    for n in range(size):
        record = scope_logs.log_records.add()
        record.time_unix_nano = base + n
        record.body.string_value = "claude_code.api_request"
        record.attributes.extend(
            [
                kv("event.name", "api_request"),
                kv("session.id", f"s-{worker}"),
                kv("prompt.id", f"p-{worker}-{seq}"),
                kv("event.sequence", str(n)),
                kv("model", "claude-sonnet-4-5"),
                kv("cost_usd", "0.0123"),
                kv("duration_ms", "1534"),
                kv("input_tokens", "1200"),
                kv("output_tokens", "345"),
                kv("cache_read_tokens", "5000"),
                kv("cache_creation_tokens", "0"),
                kv("request_id", f"req_{worker}_{seq}_{n}"),
            ]
        )
    return request.SerializeToString()


def load(url: str, token: str, connections: int, batch: int, seconds: float, out: Any) -> None:
    """Child process: ``connections`` threads, each a keep-alive session posting batches."""
    import requests

    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker(index: int) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"}
        seq = 0
        mine: list[float] = []
        codes: dict[int, int] = {}
        while time.perf_counter() < deadline:
            body = make_batch(index, seq, batch)
            started = time.perf_counter()
            response = session.post(f"{url}/v1/logs", data=body, headers=headers, timeout=30)
            mine.append(time.perf_counter() - started)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            seq += 1
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({"latencies": latencies, "statuses": statuses, "elapsed": time.perf_counter() - started})


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pulse-bench-otlp-"))
    os.environ.update({"PULSE_HOME": str(home), "PULSE_DB_PORT": str(free_port())})
    os.environ.pop("PULSE_DATABASE_URL", None)

    import psycopg

    from pulse import control
    from pulse.db import admin_engine, database_url
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.db.migrate import migrate
    from pulse.settings import get_settings
    from pulse.telemetry.server import ReceiverConfig, build_receiver, start_server
    from pulse.tokens import create_token

    settings = get_settings()
    cluster = EmbeddedPostgres(settings)
    url = database_url(settings)
    figures: dict[str, Any] = {
        "benchmark": "otlp_receiver",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "connections": args.connections,
        "batch_events": args.batch,
        "seconds": args.seconds,
        "encoding": "application/x-protobuf",
        "storage": "psycopg executemany, insert ... on conflict do nothing, one transaction per request",
    }
    try:
        migrate(settings)
        with admin_engine(settings).begin() as conn:
            control.add_tenant(conn, TENANT, "Bench", actor="bench")
            token = create_token(conn, TENANT, "ingest", name="bench", actor="bench")
        config = ReceiverConfig(max_in_flight=64, pool_size=8)
        receiver = build_receiver(url, config)
        server = start_server(receiver, "127.0.0.1", free_port())
        receiver_url = f"http://127.0.0.1:{server.server_address[1]}"

        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(
            target=load, args=(receiver_url, token, args.connections, args.batch, args.seconds, queue)
        )
        child.start()
        result = queue.get(timeout=args.seconds + 120)
        child.join(30)
        server.shutdown()
        server.server_close()
        receiver.store.pool.close()

        with psycopg.connect(url) as conn:
            row = conn.execute(f"select count(*) from raw_claude_code__{TENANT}.otel_events").fetchone()
        stored = int(row[0]) if row else 0
        latencies = sorted(result["latencies"])
        accepted = result["statuses"].get(200, 0) * args.batch
        figures.update(
            requests=len(latencies),
            statuses={str(code): n for code, n in sorted(result["statuses"].items())},
            events_accepted=accepted,
            events_stored=stored,
            elapsed_seconds=round(result["elapsed"], 2),
            events_per_second=round(accepted / result["elapsed"]),
            latency_ms_p50=round(percentile(latencies, 0.50) * 1000, 1),
            latency_ms_p95=round(percentile(latencies, 0.95) * 1000, 1),
            latency_ms_p99=round(percentile(latencies, 0.99) * 1000, 1),
        )
        print(
            f"{accepted} events accepted ({stored} stored) in {result['elapsed']:.1f} s = "
            f"{figures['events_per_second']} events/s over {args.connections} connections, "
            f"batches of {args.batch}\nrequest latency p50 {figures['latency_ms_p50']} ms, "
            f"p95 {figures['latency_ms_p95']} ms, p99 {figures['latency_ms_p99']} ms; statuses {figures['statuses']}"
        )
    finally:
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "otlp_receiver.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
