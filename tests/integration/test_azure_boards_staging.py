"""The Azure Boards staging models (dbt) on a sandbox load, compared with the planning world.

One tenant (``ab_dbt``) is created in the control plane (dbt finds tenant schemas through
``control.tenants``), loaded from the sandbox over HTTP, and ``dbt build --select
staging.azure_boards`` runs the models and their tests. Expected rows are replayed here from
the world's changes with the Agile mapping written out by hand, independently of the simulator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from connectors.azure_boards import azure_boards_source, load_azure_boards
from connectors.github.helpers import RetryPolicy
from connectors.sandbox import SandboxServer
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import WorkItem, WorkWorld
from pulse import control
from pulse.db import admin_engine
from tests.conftest import run_dbt

TENANT = "ab_dbt"
STATE = {"To Do": "New", "In Progress": "Active", "Blocked": "Active", "In Review": "Resolved", "Done": "Closed"}
CATEGORY = {"New": "todo", "Active": "in_progress", "Resolved": "in_progress", "Closed": "done"}
TIME_FRAME_STATE = {"closed": "closed", "active": "active", "future": "future"}


def ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def azure_state(item: WorkItem, status: str) -> str:
    return "Active" if item.type == "task" and status == "In Review" else STATE[status]


def path(world: WorkWorld, item: WorkItem, sprint: str | None) -> str:
    found = world.sprint(int(sprint)) if sprint else None
    return f"{item.project_key}\\{found.name}" if found else item.project_key


def initial_points(item: WorkItem) -> str | None:
    return None if item.initial_points is None else f"{item.initial_points:g}"


ChangeRow = tuple[datetime, str, str | None, str | None, str]


def replay(world: WorkWorld, item: WorkItem) -> list[ChangeRow]:
    """The change rows Azure's revisions of ``item`` give: (at, field, from, to, author)."""
    created = ms(item.created_at)
    groups: dict[datetime, list[Any]] = {}
    for change in item.changes:
        groups.setdefault(max(ms(change.at), created), []).append(change)
    status, sprint, points, assignee = "To Do", None, initial_points(item), None
    blocked = False
    rows: list[ChangeRow] = []
    for at in sorted(groups):
        before = (azure_state(item, status), path(world, item, sprint), points, assignee, blocked)
        for change in groups[at]:
            if change.field == "status":
                status = change.to_value
                blocked = status == "Blocked"
            elif change.field == "sprint":
                sprint = change.to_value
            elif change.field == "story_points":
                points = change.to_value
            elif change.field == "assignee":
                assignee = change.to_value
        author = groups[at][-1].author
        after = (azure_state(item, status), path(world, item, sprint), points, assignee, blocked)
        if after[0] != before[0]:
            rows.append((at, "status", before[0], after[0], author))
        if after[1] != before[1]:
            if before[1] != item.project_key:
                rows.append((at, "sprint", before[1], None, author))
            if after[1] != item.project_key:
                rows.append((at, "sprint", None, after[1], author))
        if after[2] != before[2]:
            rows.append((at, "story_points", before[2], after[2], author))
        if after[3] != before[3]:
            rows.append((at, "assignee", before[3], after[3], author))
        if after[4] != before[4]:
            rows.append((at, "blocked", str(before[4]).lower(), str(after[4]).lower(), author))
    return rows


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def built(
    settings: Any, sandbox: SandboxServer, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkWorld]:
    with admin_engine(settings).begin() as conn:
        if control.get_tenant(conn, TENANT) is None:
            control.add_tenant(conn, TENANT, "Azure Boards staging", actor="test")
    source = azure_boards_source(
        f"{sandbox.url}/azure/{TENANT}-eng",
        {"token": token_for("azure", TENANT)},
        {},
        page_size=200,
        retry_policy=RetryPolicy(server_error_backoff=0.05, max_backoff=0.3),
    )
    load_azure_boards(TENANT, db_url, source, pipelines_dir=str(tmp_path_factory.mktemp("ab_dbt")))
    run_dbt(["build", "--select", "staging.azure_boards"])
    yield sandbox.work_world(TENANT)


def test_work_items_match_the_world(built: WorkWorld, db_url: str) -> None:
    world = built
    rows = {
        row[0]: row[1:]
        for row in query(
            db_url,
            "select work_item_id, item_type, native_type, status, status_category, story_points, sprint_id, "
            "assignee_email, reporter_email, parent_id, caused_by_id, created_at, updated_at, resolved_at, "
            "dmt_ac_quality, dmt_unit_test_task, dmt_unit_test_status, dmt_coverage_pct, dmt_exception, "
            "dmt_exception_approver, dmt_exception_expires, source_system, project_key "
            "from staging.stg_azure_boards__work_items where tenant_id = %s",
            TENANT,
        )
    }
    assert len(rows) == len(world.items)
    for item in world.items:
        row = rows[str(item.id)]
        sprint = world.sprint(item.sprint_id) if item.sprint_id else None
        expected_points = None if item.story_points is None else float(item.story_points)
        assert row[0] == item.type and row[2] == azure_state(item, item.status), item.id
        assert row[3] == item.status_category, item.id
        assert (float(row[4]) if row[4] is not None else None) == expected_points
        assert row[5] == (f"{item.project_key}\\{sprint.name}" if sprint else None)
        assert (row[6], row[7]) == (item.assignee, item.reporter)
        assert (row[8], row[9]) == (
            str(item.parent_id) if item.parent_id else None,
            str(item.caused_by_id) if item.caused_by_id else None,
        )
        assert row[10] == ms(item.created_at) and row[12] == (ms(item.resolved_at) if item.resolved_at else None)
        if item.type != "epic":
            dmt = item.dmt
            assert (row[13], row[14], row[15]) == (dmt.ac_quality, dmt.unit_test_task, dmt.unit_test_status), item.id
            assert (float(row[16]) if row[16] is not None else None) == dmt.coverage_pct
            assert (row[17], row[18], row[19]) == (dmt.exception, dmt.exception_approver, dmt.exception_expires)
        assert (row[20], row[21]) == ("azure_boards", item.project_key)
    native = Counter(row[1] for row in rows.values())
    assert set(native) <= {"User Story", "Bug", "Task", "Epic"} and native["Epic"] > 0


def test_changes_are_the_revisions_differences(built: WorkWorld, db_url: str) -> None:
    world = built
    rows = query(
        db_url,
        "select work_item_id, changed_at, field, from_value, to_value, author_email, from_status_category, "
        "to_status_category from staging.stg_azure_boards__work_item_changes where tenant_id = %s",
        TENANT,
    )
    actual = Counter((int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows)
    expected = Counter(
        (item.id, at, field, old, new, author)
        for item in world.items
        for at, field, old, new, author in replay(world, item)
    )
    assert actual == expected
    for row in rows:
        if row[2] == "status":
            assert (row[6], row[7]) == (CATEGORY[row[3]], CATEGORY[row[4]])
        else:
            assert row[6] is None and row[7] is None
    # A carry-over is two rows at one moment: the sprint left and the next one entered.
    carried = next(i for i in world.items if any(c.kind == "carried_over" for c in i.changes))
    change = next(c for c in carried.changes if c.kind == "carried_over")
    moved = sorted(
        (r[3] or "", r[4] or "") for r in rows if r[0] == str(carried.id) and r[2] == "sprint" and r[1] == ms(change.at)
    )
    assert moved == sorted([(path(world, carried, change.from_value), ""), ("", path(world, carried, change.to_value))])
    fields = {r[2] for r in rows}
    assert fields == {"status", "sprint", "story_points", "assignee", "blocked"}


def test_sprints_and_users(built: WorkWorld, db_url: str) -> None:
    world = built
    rows = {
        row[0]: row[1:]
        for row in query(
            db_url,
            "select sprint_id, sprint_name, project_key, board_id, state, start_at, end_at, completed_at "
            "from staging.stg_azure_boards__sprints where tenant_id = %s",
            TENANT,
        )
    }
    assert len(rows) == len(world.sprints)
    for sprint in world.sprints:
        name, project, board, state, start_at, end_at, completed_at = rows[f"{sprint.project_key}\\{sprint.name}"]
        start_day = datetime(sprint.start.year, sprint.start.month, sprint.start.day, tzinfo=UTC)
        end_day = datetime(sprint.end.year, sprint.end.month, sprint.end.day, tzinfo=UTC)
        assert (name, project, board) == (sprint.name, sprint.project_key, f"{sprint.project_key} Team")
        assert state == TIME_FRAME_STATE[sprint.state(world.now)]
        assert (start_at, end_at) == (start_day, end_day)
        assert completed_at == (end_day if state == "closed" else None)
    assert end_day - start_day == timedelta(days=14)
    users = dict(
        query(db_url, "select email, display_name from staging.stg_azure_boards__users where tenant_id = %s", TENANT)
    )
    members = {p.email: p.name for p in world.people if p.team in {project.team for project in world.projects}}
    assert {email: users[email] for email in members} == members
