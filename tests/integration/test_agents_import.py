"""``pulse agents import``: history files into ``raw_agent_import__<tenant>.runs`` (real PostgreSQL)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from connectors.agent_platform import RUN_COLUMN_TYPES
from connectors.sandbox.agent_platform import AgentPlatformWorld, agent_platform_world, run_item
from pulse.agents import dataset_name, import_runs
from pulse.agents.cli import agents
from pulse.control import ControlError, add_tenant, get_tenant
from pulse.db import admin_engine

NOW = datetime(2025, 6, 2, tzinfo=UTC)


def ensure_tenant(slug: str) -> str:
    with admin_engine().begin() as conn:
        if get_tenant(conn, slug) is None:
            add_tenant(conn, slug, slug.replace("_", " ").title(), actor="test")
    return slug


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def table_exists(db_url: str, tenant: str) -> bool:
    return bool(
        query(
            db_url,
            "select 1 from information_schema.tables where table_schema = %s and table_name = 'runs'",
            dataset_name(tenant),
        )
    )


def world(slug: str) -> AgentPlatformWorld:
    return agent_platform_world(slug, now=NOW, scale=0.2)


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def flat_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": item["id"],
        "agent_type": item["agent_type"],
        "user_email": item["user"]["email"],
        "user_name": item["user"]["name"],
        "team": item["team"],
        "status": item["status"],
        "model_name": item["model"]["name"],
        "model_version": item["model"]["version"],
        "created_at": item["created_at"],
        "started_at": item["started_at"],
        "ended_at": item["ended_at"],
        "updated_at": item["updated_at"],
        **item["usage"],
        "cost_usd": item["cost_usd"],
        "error_category": (item["error"] or {}).get("category"),
        "error_message": (item["error"] or {}).get("message"),
    }


def test_jsonl_import_lands_every_run_and_is_idempotent(settings: Any, db_url: str, tmp_path: Path) -> None:
    tenant = ensure_tenant("imp_jsonl")
    runs = world(tenant).ordered()
    path = write_jsonl(tmp_path / "history.jsonl", [run_item(run) for run in runs])

    first = import_runs(settings, tenant, path)
    assert (first.new, first.updated, first.unchanged, first.rejected) == (len(runs), 0, 0, [])
    rows = query(
        db_url,
        f"select run_id, user_email, status, ended_at, input_tokens, cost_usd, error_category, source_file, "
        f'payload from "{dataset_name(tenant)}".runs',
    )
    assert len(rows) == len(runs)
    by_id = {row[0]: row for row in rows}
    no_cost = next(r for r in runs if r.is_finished and r.cost_usd is None)
    failed = next(r for r in runs if r.status == "failed")
    assert by_id[no_cost.id][1:6] == (
        no_cost.person.email,
        no_cost.status,
        no_cost.ended_at,
        no_cost.input_tokens,
        None,
    )
    assert by_id[failed.id][6] == failed.error_category
    assert by_id[failed.id][7] == "history.jsonl"
    assert by_id[failed.id][8] == run_item(failed)

    second = import_runs(settings, tenant, path)
    assert (second.new, second.updated, second.unchanged) == (0, 0, len(runs))
    assert query(db_url, f'select count(*) from "{dataset_name(tenant)}".runs')[0][0] == len(runs)

    # a changed run in a later export is updated in place
    items = [run_item(run) for run in runs]
    items[0]["status"], items[0]["error"] = "failed", {"category": "timeout", "message": "late failure"}
    third = import_runs(settings, tenant, write_jsonl(tmp_path / "later.jsonl", items))
    assert (third.new, third.updated, third.unchanged) == (0, 1, len(runs) - 1)
    assert query(
        db_url, f'select status, source_file from "{dataset_name(tenant)}".runs where run_id = %s', runs[0].id
    ) == [("failed", "later.jsonl")]


def test_csv_import_without_run_ids_is_idempotent(settings: Any, db_url: str, tmp_path: Path) -> None:
    tenant = ensure_tenant("imp_csv")
    runs = world(tenant).ordered()[:40]
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[c for c in RUN_COLUMN_TYPES if c != "payload"])
        writer.writeheader()
        for run in runs:
            writer.writerow({**flat_row(run_item(run)), "run_id": ""})

    first = import_runs(settings, tenant, path, fmt="csv")
    assert (first.new, first.updated, first.unchanged, len(first.rejected)) == (len(runs), 0, 0, 0)
    stored = query(
        db_url, f'select run_id, user_email, created_at, input_tokens, cost_usd from "{dataset_name(tenant)}".runs'
    )
    assert all(run_id.startswith("imp_") for run_id, *_ in stored)
    assert sorted((email, created, tokens, cost) for _, email, created, tokens, cost in stored) == sorted(
        (r.person.email, r.created_at, r.input_tokens, r.cost_usd) for r in runs
    )
    second = import_runs(settings, tenant, path)
    assert (second.new, second.updated, second.unchanged) == (0, 0, len(runs))


def test_dry_run_writes_nothing(settings: Any, db_url: str, tmp_path: Path) -> None:
    tenant = ensure_tenant("imp_dry")
    runs = world(tenant).ordered()[:25]
    path = write_jsonl(tmp_path / "runs.jsonl", [run_item(run) for run in runs])
    report = import_runs(settings, tenant, path, dry_run=True)
    assert (report.new, report.updated, report.unchanged, report.dry_run) == (25, 0, 0, True)
    assert not table_exists(db_url, tenant)
    assert query(db_url, "select 1 from information_schema.schemata where schema_name = %s", dataset_name(tenant)) == []

    import_runs(settings, tenant, write_jsonl(tmp_path / "first.jsonl", [run_item(run) for run in runs[:10]]))
    report = import_runs(settings, tenant, path, dry_run=True)
    assert (report.new, report.updated, report.unchanged) == (15, 0, 10)
    assert query(db_url, f'select count(*) from "{dataset_name(tenant)}".runs')[0][0] == 10


def test_mixed_file_keeps_every_good_row_and_reports_each_bad_line(settings: Any, db_url: str, tmp_path: Path) -> None:
    tenant = ensure_tenant("imp_mixed")
    runs = world(tenant).ordered()[:6]
    good = [run_item(run) for run in runs]
    no_email = {**good[0], "id": "bad_1", "user": {"name": "Nobody"}}
    bad_time = {**good[1], "id": "bad_2", "started_at": "last tuesday"}
    negative = {**good[2], "id": "bad_3", "usage": {**good[2]["usage"], "output_tokens": -3}}
    unknown = {**good[3], "id": "bad_4", "status": "exploded"}
    backwards = {**good[4], "id": "bad_5", "ended_at": "2020-01-01T00:00:00Z"}
    lines = [
        json.dumps(good[0]),  # 1
        json.dumps(no_email),  # 2
        json.dumps(good[1]),  # 3
        json.dumps(bad_time),  # 4
        "{oops",  # 5
        json.dumps(negative),  # 6
        json.dumps(good[2]),  # 7
        json.dumps(unknown),  # 8
        json.dumps(backwards),  # 9
        *(json.dumps(item) for item in good[3:]),  # 10-12
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")

    report = import_runs(settings, tenant, path)
    assert (report.new, report.kept) == (6, 6)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [2, 4, 5, 6, 8, 9]
    assert reasons[2] == "missing user_email"
    assert reasons[4] == "unparseable started_at: 'last tuesday'"
    assert reasons[5].startswith("not valid JSON")
    assert reasons[6] == "negative output_tokens: -3"
    assert reasons[8].startswith("unknown status 'exploded'")
    assert reasons[9].startswith("ended before started")
    stored = {row[0] for row in query(db_url, f'select run_id from "{dataset_name(tenant)}".runs')}
    assert stored == {run.id for run in runs}


def test_unknown_tenant_is_a_clear_error(settings: Any, db_url: str, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "runs.jsonl", [run_item(world("imp_ghost").ordered()[0])])
    with pytest.raises(ControlError, match="No tenant 'imp_ghost'"):
        import_runs(settings, "imp_ghost", path)
    assert not table_exists(db_url, "imp_ghost")


def test_cli_prints_the_report(settings: Any, db_url: str, tmp_path: Path) -> None:
    tenant = ensure_tenant("imp_cli")
    items = [run_item(run) for run in world(tenant).ordered()[:5]]
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items) + json.dumps({**items[0], "user": {}}) + "\n")
    runner = CliRunner()

    dry = runner.invoke(agents, ["import", str(path), "--tenant", tenant, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run (nothing written)" in dry.output
    assert "kept: 5 (new 5, updated 0, unchanged 0)" in dry.output
    assert "rejected: 1\n  line 6: missing user_email" in dry.output
    assert not table_exists(db_url, tenant)

    done = runner.invoke(agents, ["import", str(path), "--tenant", tenant, "--format", "jsonl"])
    assert done.exit_code == 0, done.output
    assert "kept: 5 (new 5, updated 0, unchanged 0)" in done.output

    missing = runner.invoke(agents, ["import", str(path), "--tenant", "imp_nobody"])
    assert missing.exit_code == 1
    assert "No tenant 'imp_nobody'" in missing.output
