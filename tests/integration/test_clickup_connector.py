"""The ClickUp connector against the sandbox's ClickUp API (real HTTP) and a real PostgreSQL.

A sandbox server of its own with a small world and 10 tasks a page, so every list pages; each
test uses a tenant of its own (worlds that advance and datasets do not interfere). Expected
rows and values come from the tenant's planning world and its ClickUp rendering.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dlt.common.pipeline import LoadInfo

from connectors.clickup import (
    TABLES,
    ClickUpApiError,
    ClickUpAuthError,
    RetryPolicy,
    check_connection,
    clickup_source,
    dataset_name,
    discover_fields,
    load_clickup,
    row_counts,
)
from connectors.sandbox import SandboxServer
from connectors.sandbox.clickup import ClickUpWorkspace, ms
from connectors.sandbox.clickup.workspace import FIELDS, STATUSES
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import TODO, Change, WorkItem, WorkWorld
from pulse.fieldmap import CANONICAL_NAMES, field_ids, propose

#: The sandbox world's day, fixed: a world is a function of its day, so today's world would
#: give the test other items (and maybe none of a case it needs) each day.
WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)

FAST = RetryPolicy(server_error_backoff=0.05, secondary_limit_wait=0.1, reset_margin=0.2, max_backoff=0.5)
DATA_TABLES = ("tasks", "task_status_history", "lists", "custom_fields", "members", "sprint_memberships")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    sandbox = SandboxServer(seed=11, scale=0.3, work_scale=0.35, history_days=42, now=WORLD_DAY).start()
    sandbox.clickup_page_size = 10  # type: ignore[attr-defined]
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def faulty(server: SandboxServer) -> Iterator[SandboxServer]:
    server.faults.reset()
    try:
        yield server
    finally:
        server.faults.reset()


def base(server: SandboxServer) -> str:
    return f"{server.url}/clickup"


def load(
    server: SandboxServer,
    db_url: str,
    tenant: str,
    pipelines_dir: Path,
    *,
    token: str | None = None,
    policy: RetryPolicy = FAST,
    mappings: dict[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> LoadInfo:
    source = clickup_source(
        base(server),
        {"token": token or token_for("clickup", tenant)},
        {},
        field_mappings=mappings,
        start_date=start,
        end_date=end,
        page_size=25,
        retry_policy=policy,
    )
    return load_clickup(tenant, db_url, source, pipelines_dir=str(pipelines_dir))


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def table_counts(db_url: str, tenant: str) -> dict[str, int]:
    schema = dataset_name(tenant)
    existing = {
        row[0]
        for row in query(db_url, "select table_name from information_schema.tables where table_schema = %s", schema)
    }
    return {
        table: query(db_url, f'select count(*) from "{schema}"."{table}"')[0][0] if table in existing else 0
        for table in DATA_TABLES
    }


def statuses_visited(item: WorkItem) -> int:
    return len({TODO, *(c.to_value for c in item.changes if c.field == "status")})


def expected_counts(world: WorkWorld, items: list[WorkItem] | None = None) -> dict[str, int]:
    items = world.items if items is None else items
    return {
        "tasks": len(items),
        "task_status_history": sum(statuses_visited(i) for i in items),
        "lists": len(world.projects) + len(world.sprints),
        "custom_fields": len(FIELDS),
        "members": len(world.people),
        "sprint_memberships": sum(1 for i in items if i.sprint_id is not None),
    }


def millis(moment: datetime) -> int:
    return int(ms(moment) or 0)


def test_full_load_lands_the_world(server: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = server.work_world("cu_full")
    ws = ClickUpWorkspace(world)
    info = load(server, db_url, "cu_full", tmp_path)
    assert not info.has_failed_jobs
    assert row_counts(info) == expected_counts(world) == table_counts(db_url, "cu_full")
    schema = dataset_name("cu_full")
    assert query(db_url, f"select count(distinct id) from {schema}.tasks")[0][0] == len(world.items)
    quarantine = "select count(*) from information_schema.tables where table_schema = %s and table_name = 'quarantine'"
    assert query(db_url, quarantine, schema) == [(0,)]
    # One task, field by field, against the world.
    item = next(
        i for i in world.items
        if i.sprint_id and i.parent_id and i.dmt.unit_test_status and i.dmt.ac_quality and i.story_points
    )  # fmt: skip
    sprint = world.sprint(item.sprint_id or 0)
    parent = world.item(item.parent_id or 0)
    assert sprint is not None and parent is not None
    ac_quality, unit_test_status = item.dmt.ac_quality or "", item.dmt.unit_test_status or ""
    row = query(
        db_url,
        f"select status, status_type, task_type, date_created, date_updated, assignee_email, creator_email,"
        f" parent_id, list_id, space_id, space_name, story_points, sprint, dmt_ac_quality, dmt_unit_test_status,"
        f" dmt_unit_test_task, dmt_coverage_pct, dmt_pr_links, dmt_exception, payload->>'name'"
        f" from {schema}.tasks where id = %s",
        item.clickup_id,
    )[0]
    project = world.project(item.project_key)
    assert project is not None
    assert row == (
        STATUSES[item.status][0],
        STATUSES[item.status][1],
        item.type.title(),
        datetime.fromtimestamp(millis(item.created_at) / 1000, UTC),
        datetime.fromtimestamp(millis(item.updated_at) / 1000, UTC),
        item.assignee,
        item.reporter,
        parent.clickup_id,
        ws.backlog_id(project),
        ws.space_id(project),
        project.name,
        item.story_points,
        ws.sprint_list_id(sprint),
        ac_quality.title(),
        unit_test_status.replace("_", " ").title(),
        item.dmt.unit_test_task,
        item.dmt.coverage_pct,
        "\n".join(item.dmt.pr_links) or None,
        item.dmt.exception,
        item.title,
    )
    history = query(
        db_url, f"select status, since from {schema}.task_status_history where task_id = %s order by since",
        item.clickup_id,
    )  # fmt: skip
    first: dict[str, datetime] = {TODO: item.created_at}
    for change in item.changes:
        if change.field == "status":
            first.setdefault(change.to_value or TODO, change.at)
    assert [(s, t) for s, t in history] == sorted(
        ((STATUSES[s][0], datetime.fromtimestamp(millis(at) / 1000, UTC)) for s, at in first.items()),
        key=lambda pair: pair[1],
    )
    memberships = query(
        db_url, f"select list_id, task_id from {schema}.sprint_memberships where left_at is null order by 1, 2"
    )
    assert memberships == sorted(
        (ws.sprint_list_id(world.sprint(i.sprint_id)), i.clickup_id)  # type: ignore[arg-type]
        for i in world.items
        if i.sprint_id
    )
    assert query(db_url, f"select count(*) from {schema}.sprint_memberships where not seen_on_first_walk")[0][0] == 0
    sprints = query(db_url, f"select id, start_date, due_date from {schema}.lists where is_sprint order by id")
    assert sprints == sorted(
        (ws.sprint_list_id(s), datetime.fromtimestamp(millis(s.start) / 1000, UTC), s.end) for s in world.sprints
    )
    mapped = dict(query(db_url, f"select canonical_name, name from {schema}.custom_fields where canonical_name > ''"))
    assert mapped["story_points"] == "Story Points" and mapped["dmt_exception"] == "DMT Exception"
    assert len(mapped) == len(CANONICAL_NAMES) - 1  # the sprint is a folder, not a field

    columns = {
        (table, column): kind
        for table, column, kind in query(
            db_url,
            "select table_name, column_name, data_type from information_schema.columns where table_schema = %s"
            " and column_name not like '\\_dlt%%'",
            schema,
        )
    }
    for table in DATA_TABLES:
        assert {c for t, c in columns if t == table} == set(TABLES[table]), table
    assert columns[("tasks", "date_updated")] == "timestamp with time zone"
    assert columns[("tasks", "dmt_exception_expires")] == "date"
    assert columns[("tasks", "story_points")] == "double precision"
    assert columns[("tasks", "dmt_exception")] == "boolean"
    assert columns[("tasks", "payload")] == "jsonb"


def test_incremental_rerun_fetches_what_changed(server: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = server.work_world("cu_inc")
    first = load(server, db_url, "cu_inc", tmp_path / "first")
    assert row_counts(first)["tasks"] == len(world.items)
    with server.locked():
        cursor = max(millis(i.updated_at) for i in world.items)
    change = server.advance_work_items("cu_inc", 3)
    changed = set(change.changed_item_ids) | set(change.new_item_ids)
    with server.locked():
        # Everything updated since the cursor, less the connector's overlap of 120 s.
        again = [i for i in world.items if millis(i.updated_at) >= cursor - 120_000]
    assert changed <= {i.id for i in again} and len(again) < len(world.items) // 3

    mark = len(server.requests)
    second = load(server, db_url, "cu_inc", tmp_path / "wiped")  # the cursor comes back from the destination
    counts = row_counts(second)
    assert counts["tasks"] == len(again)
    assert counts["task_status_history"] == sum(statuses_visited(i) for i in again)
    task_pages = [r.path for r in server.requests_since(mark) if "/task?" in r.path and "include_timl" not in r.path]
    assert task_pages and all(f"date_updated_gt={cursor - 120_000 - 1}" in path for path in task_pages)
    assert table_counts(db_url, "cu_inc") == expected_counts(world)
    schema = dataset_name("cu_inc")
    for item_id in change.changed_item_ids:
        item = world.item(item_id)
        assert item is not None
        assert query(db_url, f"select status from {schema}.tasks where id = %s", item.clickup_id) == [
            (STATUSES[item.status][0],)
        ]
    (new_id,) = change.new_item_ids
    new = world.item(new_id)
    assert new is not None and new.sprint_id is not None
    seen = query(
        db_url, f"select seen_on_first_walk, first_seen_at from {schema}.sprint_memberships where task_id = %s",
        new.clickup_id,
    )  # fmt: skip
    assert len(seen) == 1 and seen[0][0] is False

    # Nothing changed since: only the overlap of the newest change comes again.
    newest = max(millis(i.updated_at) for i in world.items)
    third = load(server, db_url, "cu_inc", tmp_path / "wiped")
    assert row_counts(third)["tasks"] == sum(1 for i in world.items if millis(i.updated_at) >= newest - 120_000)
    assert table_counts(db_url, "cu_inc") == expected_counts(world)


def test_rate_limits_and_server_errors_are_retried(faulty: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = faulty.work_world("cu_retry")
    faulty.faults.too_many_requests = 1
    faulty.faults.server_errors = 2
    faulty.faults.path_contains = "/task"
    mark = len(faulty.requests)
    load(faulty, db_url, "cu_retry", tmp_path)
    served = [(r.status, r.fault) for r in faulty.requests_since(mark) if r.fault]
    assert served == [(429, "too_many_requests"), (500, "server_errors"), (500, "server_errors")]
    assert table_counts(db_url, "cu_retry") == expected_counts(world)


def test_expired_token_fails_clearly_and_loses_nothing(faulty: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = faulty.work_world("cu_expired")
    faulty.faults.expired_token = 1
    faulty.faults.path_contains = "/task"  # after the Workspace was read: in the middle of the extract
    token = token_for("clickup", "cu_expired")
    with pytest.raises(ClickUpAuthError) as caught:
        load(faulty, db_url, "cu_expired", tmp_path)
    message = str(caught.value)
    assert message == (
        "the ClickUp token for source 'clickup' has expired or was revoked (401 Oauth token not found, OAUTH_019); "
        "generate a new personal token in ClickUp (Settings › Apps › API Token) and update the source with "
        "`pulse source update`"
    )
    assert token not in message
    assert table_counts(db_url, "cu_expired") == dict.fromkeys(DATA_TABLES, 0)
    info = load(faulty, db_url, "cu_expired", tmp_path)
    assert row_counts(info) == expected_counts(world) == table_counts(db_url, "cu_expired")


def test_malformed_task_is_quarantined_and_every_good_row_loads(
    faulty: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    world = faulty.work_world("cu_bad")
    target = world.malformed_target()
    faulty.faults.malformed_work_item = True
    before = datetime.now(UTC)
    load(faulty, db_url, "cu_bad", tmp_path)
    schema = dataset_name("cu_bad")
    rows = query(db_url, f"select resource, item_key, reason, payload->>'id', seen_at from {schema}.quarantine")
    assert len(rows) == 1
    resource, key, reason, payload_id, seen_at = rows[0]
    assert (resource, key, payload_id) == ("tasks", f"task id={target.clickup_id}", target.clickup_id)
    assert "missing required field 'status.status'" in reason
    assert "'date_updated' is not a Unix time in milliseconds: 'yesterday, after lunch'" in reason
    assert seen_at >= before
    others = [i for i in world.items if i.id != target.id]
    assert table_counts(db_url, "cu_bad") == expected_counts(world, others) | {
        "sprint_memberships": expected_counts(world)["sprint_memberships"]  # memberships need only the id
    }
    assert query(db_url, f"select count(*) from {schema}.tasks where id = %s", target.clickup_id) == [(0,)]


def _pk_checksum(values: list[str]) -> str:
    return hashlib.md5(",".join(sorted(values)).encode()).hexdigest()


def test_a_load_killed_midway_then_rerun_loses_and_duplicates_nothing(
    faulty: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    world = faulty.work_world("cu_kill")
    load(faulty, db_url, "cu_kill", tmp_path)
    schema = dataset_name("cu_kill")
    snapshot = table_counts(db_url, "cu_kill")
    state = query(db_url, f"select count(*) from {schema}._dlt_pipeline_state")[0][0]
    change = faulty.advance_work_items("cu_kill", 4)
    faulty.faults.server_errors = 1000
    faulty.faults.path_contains = "time_in_status"  # task pages pass, their status history fails
    with pytest.raises(ClickUpApiError) as caught:
        load(faulty, db_url, "cu_kill", tmp_path, policy=RetryPolicy(max_attempts=2, server_error_backoff=0.05))
    assert caught.value.status == 500 and "time_in_status" in caught.value.url
    assert "after 2 attempts" in str(caught.value)
    assert table_counts(db_url, "cu_kill") == snapshot
    assert query(db_url, f"select count(*) from {schema}._dlt_pipeline_state")[0][0] == state  # cursor kept
    faulty.faults.reset()
    info = load(faulty, db_url, "cu_kill", tmp_path)
    assert {*change.changed_item_ids, *change.new_item_ids} <= {
        i.id for i in world.items if i.clickup_id in {r[0] for r in query(db_url, f"select id from {schema}.tasks")}
    }
    assert row_counts(info)["tasks"] >= len(change.changed_item_ids) + 1
    assert table_counts(db_url, "cu_kill") == expected_counts(world)
    ids = [r[0] for r in query(db_url, f"select id from {schema}.tasks")]
    assert _pk_checksum(ids) == _pk_checksum([i.clickup_id for i in world.items])
    keys = [f"{t}/{s}" for t, s in query(db_url, f"select task_id, status from {schema}.task_status_history")]
    ws = ClickUpWorkspace(world)
    expected_keys = [
        f"{i.clickup_id}/{entry['status']}" for i in world.items for entry in ws.time_in_status(i)["status_history"]
    ]
    assert _pk_checksum(keys) == _pk_checksum(expected_keys)


def test_backfill_window_loads_only_its_tasks_and_keeps_the_cursor(
    server: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    world = server.work_world("cu_back")
    ordered = sorted(world.items, key=lambda i: i.updated_at)
    start = datetime.fromtimestamp(millis(ordered[len(ordered) // 3].updated_at) / 1000, UTC)
    end = datetime.fromtimestamp(millis(ordered[2 * len(ordered) // 3].updated_at) / 1000, UTC)
    window = [i for i in world.items if millis(start) <= millis(i.updated_at) < millis(end)]
    info = load(server, db_url, "cu_back", tmp_path, start=start, end=end)
    assert row_counts(info)["tasks"] == len(window) > 0
    schema = dataset_name("cu_back")
    assert {r[0] for r in query(db_url, f"select id from {schema}.tasks")} == {i.clickup_id for i in window}
    info = load(server, db_url, "cu_back", tmp_path)  # the window did not move the cursor
    assert row_counts(info)["tasks"] == len(world.items)
    assert table_counts(db_url, "cu_back") == expected_counts(world)


def test_discovery_maps_every_canonical_field_and_mappings_drive_the_columns(
    server: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    world = server.work_world("cu_map")
    ws = ClickUpWorkspace(world)
    candidates = discover_fields(base(server), {"token": token_for("clickup", "cu_map")}, {})
    proposal = propose(candidates)
    assert proposal.missing == []
    mapped = field_ids({name: m.as_json() for name, m in proposal.mappings.items()})
    by_name = {spec.name: ws.field_id(spec) for spec in FIELDS}
    assert set(mapped) == set(CANONICAL_NAMES)
    assert mapped["story_points"] == by_name["Story Points"]
    assert mapped["dmt_exception"] == by_name["DMT Exception"]
    assert mapped["dmt_exception_reason"] == by_name["DMT Exception Reason"]
    assert mapped["sprint"] == "folder:" + ",".join(sorted(ws.folder_id(p) for p in world.projects))
    kinds = {c.name: (c.type, c.schema_key) for c in candidates}
    assert kinds["Acceptance Criteria Quality"] == ("option", "drop_down")
    assert kinds["DMT Exception Approver"] == ("user", "users")
    assert kinds["Sprint Goal"] == ("string", "short_text")  # a decoy the sprint folders beat
    # An admin's choice wins: story points read from the decoy "Effort (hours)" (3 h a point).
    load(server, db_url, "cu_map", tmp_path, mappings={**mapped, "story_points": by_name["Effort (hours)"]})
    schema = dataset_name("cu_map")
    points = dict(query(db_url, f"select id, story_points from {schema}.tasks"))
    assert points == {i.clickup_id: None if i.story_points is None else i.story_points * 3 for i in world.items}


def test_check_connection_says_what_failed(server: SandboxServer) -> None:
    world = server.work_world("cu_check")
    ws = ClickUpWorkspace(world)
    creds = {"token": token_for("clickup", "cu_check")}
    ok, message = check_connection(base(server), creds, {"workspace_id": ws.team_id})
    assert ok, message
    assert message == (
        f"ok: Workspace '{ws.name}' ({ws.team_id}) at {base(server)}, every Space: "
        f"{', '.join(p.name for p in ws.projects())}; {len(ws.lists())} lists ({len(world.sprints)} in sprint "
        f"folders), {len(world.people)} members"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ok, message = check_connection(f"http://127.0.0.1:{port}/clickup", creds, {})
    assert not ok and message.startswith(f"ClickUp at http://127.0.0.1:{port}/clickup is unreachable")
    assert "check the base URL" in message
    ok, message = check_connection(base(server), {"token": "pk_123_NOTVALID"}, {})
    assert not ok and "was rejected as invalid (401 Token invalid, OAUTH_025)" in message
    assert "pk_123_NOTVALID" not in message
    noperm = token_for("clickup", "cu_check", noperm=True)
    ok, message = check_connection(base(server), {"token": noperm}, {})
    assert not ok
    assert message == (
        f"the ClickUp token of source 'clickup' is valid but may not read {base(server)}/api/v2/team/"
        f"{ws.team_id}/space?archived=false (401 Team not authorized, OAUTH_027); give the token's user access "
        "to the Workspace and its Spaces, or use the token of a member who has it"
    )
    assert noperm not in message
    ok, message = check_connection(base(server), creds, {"workspace_id": "123"})
    assert not ok and message == (
        f"ClickUp Workspace 123 of source 'clickup' is not one this token can see (it sees: {ws.team_id} "
        f"({ws.name})); set workspace_id to one of them"
    )
    space = ws.space_id(ws.projects()[0])
    ok, message = check_connection(base(server), creds, {"space_ids": f"{space},90129999999"})
    assert not ok and message.startswith(
        f"ClickUp Space(s) 90129999999 of source 'clickup' are not in Workspace {ws.team_id}"
    )
    ok, message = check_connection(base(server), creds, {"space_ids": space})
    assert ok and f"1 configured Space(s): {ws.projects()[0].name};" in message


def test_membership_left_when_a_task_leaves_its_sprint(server: SandboxServer, db_url: str, tmp_path: Path) -> None:
    world = server.work_world("cu_leave")
    ws = ClickUpWorkspace(world)
    load(server, db_url, "cu_leave", tmp_path)
    first_load = query(db_url, f"select max(last_seen_at) from {dataset_name('cu_leave')}.sprint_memberships")[0][0]
    with server.locked():
        active = {s.id for s in world.sprints if s.state(world.clock) == "active"}
        item = next(i for i in world.items if i.sprint_id in active)
        sprint = world.sprint(item.sprint_id or 0)
        assert sprint is not None
        world.clock += timedelta(minutes=5)  # taken out of the sprint, back to the backlog
        item.changes.append(Change(world.clock, "sprint", str(sprint.id), None, item.reporter, "removed"))
    before = datetime.now(UTC)
    load(server, db_url, "cu_leave", tmp_path)
    rows = query(
        db_url,
        f"select first_seen_at, last_seen_at, left_at from {dataset_name('cu_leave')}.sprint_memberships"
        " where task_id = %s",
        item.clickup_id,
    )
    assert len(rows) == 1
    first_seen, last_seen, left = rows[0]
    assert first_seen == last_seen == first_load and left >= before
    assert query(db_url, f"select sprint from {dataset_name('cu_leave')}.tasks where id = %s", item.clickup_id) == [
        (None,)
    ]
    left_lists = f"select list_id from {dataset_name('cu_leave')}.sprint_memberships where left_at is not null"
    assert query(db_url, left_lists) == [(ws.sprint_list_id(sprint),)]
