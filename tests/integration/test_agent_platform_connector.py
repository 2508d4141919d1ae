"""The agent-platform connector against the sandbox API and a real PostgreSQL (``db_url``).

Each test uses a tenant of its own (``ap_*``), so worlds the tests advance and datasets do
not interfere. Expected values come from the sandbox's world, the source of truth.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dlt.common.pipeline import LoadInfo

from connectors.agent_platform import (
    AgentPlatformAuthError,
    RetryPolicy,
    agent_platform_source,
    check_connection,
    dataset_name,
    load_agent_platform,
    row_counts,
)
from connectors.sandbox import SandboxFaults, SandboxServer
from connectors.sandbox.agent_platform import Run, token_for

FAST = RetryPolicy(server_error_backoff=0.05, secondary_limit_wait=0.1, reset_margin=0.2, max_backoff=0.5)


def load(
    sandbox: SandboxServer,
    db_url: str,
    tenant: str,
    pipelines_dir: Path,
    *,
    token: str | None = None,
    page_size: int = 100,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
) -> LoadInfo:
    source = agent_platform_source(
        sandbox.url,
        token or token_for(tenant),
        start_date=start_date,
        end_date=end_date,
        page_size=page_size,
        retry_policy=FAST,
    )
    return load_agent_platform(tenant, db_url, source, pipelines_dir=str(pipelines_dir))


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def count(db_url: str, tenant: str, table: str = "runs") -> int:
    schema = dataset_name(tenant)
    exists = query(
        db_url, "select 1 from information_schema.tables where table_schema = %s and table_name = %s", schema, table
    )
    return query(db_url, f'select count(*) from "{schema}"."{table}"')[0][0] if exists else 0


RUN_COLUMNS = (
    "run_id, agent_type, user_email, user_name, team, status, model_name, model_version, created_at, "
    "started_at, ended_at, updated_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
    "cost_usd, error_category, error_message"
)


def row_of(db_url: str, tenant: str, run_id: str) -> tuple[Any, ...]:
    rows = query(db_url, f'select {RUN_COLUMNS} from "{dataset_name(tenant)}".runs where run_id = %s', run_id)
    assert len(rows) == 1, f"{run_id}: {len(rows)} rows"
    return rows[0]


def expected_row(run: Run) -> tuple[Any, ...]:
    return (
        run.id,
        run.agent_type,
        run.person.email,
        run.person.name,
        run.team,
        run.status,
        run.model_name,
        run.model_version,
        run.created_at,
        run.started_at,
        run.ended_at,
        run.updated_at,
        run.input_tokens,
        run.output_tokens,
        run.cache_read_tokens,
        run.cache_write_tokens,
        run.cost_usd,
        run.error_category,
        run.error_message,
    )


def test_full_load_lands_every_run_field_by_field(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ap_full"
    world = sandbox.agent_world(tenant)
    info = load(sandbox, db_url, tenant, tmp_path)

    assert row_counts(info) == {"runs": len(world.runs)}
    assert count(db_url, tenant) == len(world.runs)
    assert count(db_url, tenant, "quarantine") == 0
    runs = world.ordered()
    no_cost = next(r for r in runs if r.is_finished and r.cost_usd is None)
    failed = next(r for r in runs if r.status == "failed" and r.cost_usd is not None)
    queued = next(r for r in runs if r.status == "queued")
    for run in (no_cost, failed, queued, runs[0], runs[-1]):
        assert row_of(db_url, tenant, run.id) == expected_row(run)
    assert row_of(db_url, tenant, no_cost.id)[16] is None
    assert row_of(db_url, tenant, failed.id)[17] in ("rate_limited", "timeout", "tool_error", "model_error")
    by_status = dict(query(db_url, f'select status, count(*) from "{dataset_name(tenant)}".runs group by status'))
    assert by_status == {status: n for status, n in world.counts().items() if status != "runs" and n}
    payload = query(db_url, f'select payload from "{dataset_name(tenant)}".runs where run_id = %s', failed.id)[0][0]
    assert payload["error"] == {"category": failed.error_category, "message": failed.error_message}
    assert payload["usage"]["input_tokens"] == failed.input_tokens


def test_raw_table_columns_and_types(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ap_cols"
    load(sandbox, db_url, tenant, tmp_path)
    columns = dict(
        query(
            db_url,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = 'runs'",
            dataset_name(tenant),
        )
    )
    assert {name: columns[name] for name in columns if not name.startswith("_dlt")} == {
        "run_id": "character varying",
        "agent_type": "character varying",
        "user_email": "character varying",
        "user_name": "character varying",
        "team": "character varying",
        "status": "character varying",
        "model_name": "character varying",
        "model_version": "character varying",
        "created_at": "timestamp with time zone",
        "started_at": "timestamp with time zone",
        "ended_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
        "input_tokens": "bigint",
        "output_tokens": "bigint",
        "cache_read_tokens": "bigint",
        "cache_write_tokens": "bigint",
        "cost_usd": "double precision",
        "error_category": "character varying",
        "error_message": "character varying",
        "payload": "jsonb",
    }
    primary = query(
        db_url,
        "select kcu.column_name from information_schema.table_constraints tc "
        "join information_schema.key_column_usage kcu using (constraint_schema, constraint_name) "
        "where tc.table_schema = %s and tc.table_name = 'runs' and tc.constraint_type = 'PRIMARY KEY'",
        dataset_name(tenant),
    )
    nullable = query(
        db_url,
        "select is_nullable from information_schema.columns where table_schema = %s and table_name = 'runs' "
        "and column_name = 'run_id'",
        dataset_name(tenant),
    )
    assert primary == [("run_id",)] or nullable == [("NO",)]


def test_incremental_updates_finished_runs_in_place(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ap_incr"
    world = sandbox.agent_world(tenant)
    load(sandbox, db_url, tenant, tmp_path)
    in_flight = [run.id for run in world.in_flight()]
    assert in_flight
    assert {row_of(db_url, tenant, run_id)[5] for run_id in in_flight} <= {"queued", "running"}

    change = sandbox.advance_agent_runs(tenant)
    assert set(change.finished_run_ids) == set(in_flight)
    mark = len(sandbox.requests)
    info = load(sandbox, db_url, tenant, tmp_path)

    assert row_counts(info) == {"runs": len(change.changed_run_ids)}
    assert count(db_url, tenant) == len(world.runs)  # updated in place, the new ones added
    for run_id in change.finished_run_ids:
        row = row_of(db_url, tenant, run_id)
        assert row == expected_row(world.runs[run_id])
        assert row[5] in ("succeeded", "failed")
        assert row[10] is not None and row[12] > 0
    dupes = query(db_url, f'select run_id from "{dataset_name(tenant)}".runs group by run_id having count(*) > 1')
    assert dupes == []
    # asked with the stored cursor (minus the overlap), not from the beginning
    listed = [r.path for r in sandbox.requests_since(mark) if r.tenant == tenant]
    assert listed and all("updated_after=" in path for path in listed)

    again = load(sandbox, db_url, tenant, tmp_path)
    assert row_counts(again).get("runs", 0) == 0


def test_backfill_window_loads_only_its_runs(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ap_window"
    world = sandbox.agent_world(tenant)
    start, end = world.now - timedelta(days=14), world.now - timedelta(days=7)
    info = load(sandbox, db_url, tenant, tmp_path, start_date=start, end_date=end)
    expected = [r for r in world.runs.values() if start <= r.updated_at < end]
    assert expected and len(expected) < len(world.runs)
    assert row_counts(info) == {"runs": len(expected)}


def test_rate_limits_and_server_errors_are_retried(
    sandbox: SandboxServer, sandbox_faults: SandboxFaults, db_url: str, tmp_path: Path
) -> None:
    tenant = "ap_retry"
    world = sandbox.agent_world(tenant)
    sandbox_faults.secondary_rate_limit_once = 1  # 429 + Retry-After: 1
    sandbox_faults.primary_rate_limit_once = 1  # 429 + X-RateLimit-Remaining: 0 until reset
    sandbox_faults.server_errors = 2
    sandbox_faults.path_contains = "/agent-platform/"
    mark = len(sandbox.requests)
    load(sandbox, db_url, tenant, tmp_path, page_size=200)

    assert count(db_url, tenant) == len(world.runs)
    served = sandbox.requests_since(mark)
    assert [r.status for r in served if r.fault] == [429, 429, 500, 500]
    retry_after = [r for r in served if r.fault == "secondary_rate_limit_once"]
    assert retry_after and retry_after[0].status == 429


def test_malformed_item_is_quarantined_and_the_rest_loads(
    sandbox: SandboxServer, sandbox_faults: SandboxFaults, db_url: str, tmp_path: Path
) -> None:
    tenant = "ap_bad"
    world = sandbox.agent_world(tenant)
    sandbox_faults.malformed_run = True
    load(sandbox, db_url, tenant, tmp_path)

    broken = world.malformed_target()
    assert count(db_url, tenant) == len(world.runs) - 1
    rows = query(db_url, f'select resource, item_key, reason, payload from "{dataset_name(tenant)}".quarantine')
    assert len(rows) == 1
    resource, key, reason, payload = rows[0]
    assert (resource, key) == ("runs", f"run id={broken.id}")
    assert "missing required field 'user.email'" in reason
    assert "'started_at' is not an ISO 8601 timestamp" in reason
    assert payload["id"] == broken.id


def test_rejected_token_is_a_clear_error_and_loads_nothing(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ap_auth"
    secret = "aps_live_secret_1234567890"
    with pytest.raises(AgentPlatformAuthError) as caught:
        load(sandbox, db_url, tenant, tmp_path, token=secret)
    message = str(caught.value)
    assert "agent platform token for source 'agent_platform' was rejected (401" in message
    assert "pulse source add/update" in message
    assert secret not in message
    assert count(db_url, tenant) == 0


def test_check_connection(sandbox: SandboxServer) -> None:
    ok, message = check_connection(sandbox.url, token_for("ap_check"))
    assert ok, message
    assert message == f"ok: agent runs readable at {sandbox.url}"
    ok, message = check_connection(sandbox.url, "wrong-token")
    assert not ok
    assert "rejected (401" in message and "wrong-token" not in message
