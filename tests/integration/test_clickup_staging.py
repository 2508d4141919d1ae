"""dbt staging of ClickUp: two loads of the sandbox into PostgreSQL, then
``dbt build --select staging.clickup`` (models and their tests), compared with the world.

Between the loads one task leaves its sprint and a new task enters the active one, so the
sprint rows of ``stg_clickup__work_item_changes`` show all three cases: entered at the sprint's
start (first seen by the first load of a sprint that had started), entered at the load that
first saw it, and left at the load that no longer saw it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.clickup import RetryPolicy, clickup_source, load_clickup
from connectors.sandbox import SandboxServer
from connectors.sandbox.clickup import ClickUpWorkspace, ms, sprint_list_name
from connectors.sandbox.clickup.workspace import STATUSES
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import STATUS_CATEGORY, TODO, Change, Sprint, WorkItem
from pulse import control
from pulse.db import admin_engine
from pulse.settings import Settings
from tests.conftest import run_dbt

#: The sandbox world's day, fixed: a world is a function of its day, so today's world would
#: give the test other items (and maybe none of a case it needs) each day.
WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)

TENANT = "cu_stg"
FAST = RetryPolicy(server_error_backoff=0.05, max_backoff=0.5)


def at_ms(moment: datetime) -> datetime:
    """``moment`` as ClickUp keeps it: to the millisecond."""
    return datetime.fromtimestamp(int(ms(moment) or 0) / 1000, UTC)


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def built(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two loads and a dbt build; what the test needs to know about them."""
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, TENANT, "ClickUp staging", actor="test")
    server = SandboxServer(seed=5, scale=0.3, work_scale=0.35, history_days=42, now=WORLD_DAY).start()
    server.clickup_page_size = 20  # type: ignore[attr-defined]
    pipelines = tmp_path_factory.mktemp("clickup_dlt")
    try:
        world = server.work_world(TENANT)

        def load() -> tuple[datetime, datetime]:
            source = clickup_source(
                f"{server.url}/clickup", {"token": token_for("clickup", TENANT)}, {}, retry_policy=FAST
            )
            started = datetime.now(UTC)
            load_clickup(TENANT, db_url, source, pipelines_dir=str(Path(pipelines)))
            return started, datetime.now(UTC)

        first = load()
        with server.locked():
            active = {s.id for s in world.sprints if s.state(world.clock) == "active"}
            leaver = next(i for i in world.items if i.sprint_id in active and i.status != "Done")
            left_sprint = world.sprint(leaver.sprint_id or 0)
            world.clock += timedelta(minutes=5)
            leaver.changes.append(Change(world.clock, "sprint", str(leaver.sprint_id), None, leaver.reporter))
        change = server.advance_work_items(TENANT, 2)
        second = load()
        run_dbt(["build", "--select", "staging.clickup"])
        yield {
            "world": world,
            "ws": ClickUpWorkspace(world),
            "first": first,
            "second": second,
            "leaver": leaver,
            "left_sprint": left_sprint,
            "new": world.item(change.new_item_ids[0]),
        }
    finally:
        server.stop()


def work_item(db_url: str, item: WorkItem, columns: str) -> tuple[Any, ...]:
    rows = query(
        db_url,
        f"select {columns} from staging.stg_clickup__work_items where tenant_id = %s and work_item_id = %s",
        TENANT,
        item.clickup_id,
    )
    assert len(rows) == 1
    return rows[0]


def changes(db_url: str, item: WorkItem, field: str) -> list[tuple[Any, ...]]:
    return query(
        db_url,
        "select changed_at, from_value, to_value, from_status_category, to_status_category"
        " from staging.stg_clickup__work_item_changes where tenant_id = %s and work_item_id = %s and field = %s"
        " order by changed_at, change_id",
        TENANT,
        item.clickup_id,
        field,
    )


def test_work_items_match_the_world(built: dict[str, Any], db_url: str) -> None:
    world, ws = built["world"], built["ws"]
    counts = query(
        db_url,
        "select count(*), count(distinct work_item_id) from staging.stg_clickup__work_items where tenant_id = %s",
        TENANT,
    )
    assert counts == [(len(world.items), len(world.items))]
    for item in world.items:
        sprint = world.sprint(item.sprint_id) if item.sprint_id else None
        parent = world.item(item.parent_id) if item.parent_id else None
        cause = world.item(item.caused_by_id) if item.caused_by_id else None
        row = work_item(
            db_url,
            item,
            "work_item_key, item_type, status, status_category, story_points, sprint_id, parent_id, caused_by_id,"
            " reporter_email, assignee_email, created_at, resolved_at, project_name",
        )
        assert row == (
            f"CU-{item.clickup_id}",
            item.type,
            STATUSES[item.status][0],
            item.status_category,
            None if item.story_points is None else Decimal(f"{item.story_points:g}"),
            ws.sprint_list_id(sprint) if sprint else None,
            parent.clickup_id if parent else None,
            cause.clickup_id if cause else None,
            item.reporter,
            item.assignee,
            at_ms(item.created_at),
            at_ms(item.resolved_at) if item.resolved_at else None,
            world.project(item.project_key).name,
        ), item.clickup_id
    assert any(item.caused_by_id for item in world.items), "the world should have a post-release bug"


def test_dmt_fields_are_normalized(built: dict[str, Any], db_url: str) -> None:
    world = built["world"]
    columns = (
        "dmt_ac_quality, dmt_unit_test_task, dmt_unit_test_status, dmt_coverage_pct, dmt_pr_links,"
        " dmt_ci_evidence, dmt_reviewer_signoff, dmt_exception, dmt_exception_reason, dmt_exception_approver,"
        " dmt_exception_expires"
    )
    checked = 0
    for item in world.items:
        dmt = item.dmt
        expected = (
            dmt.ac_quality,
            dmt.unit_test_task,
            dmt.unit_test_status,
            None if dmt.coverage_pct is None else Decimal(f"{dmt.coverage_pct:g}"),
            "\n".join(dmt.pr_links) or None,
            dmt.ci_evidence,
            dmt.reviewer_signoff,
            dmt.exception,
            dmt.exception_reason,
            dmt.exception_approver,
            dmt.exception_expires,
        )
        assert work_item(db_url, item, columns) == expected, item.clickup_id
        checked += dmt.unit_test_status is not None
    assert checked > 10
    exceptions = query(
        db_url,
        "select count(*) from staging.stg_clickup__work_items where tenant_id = %s and dmt_exception",
        TENANT,
    )
    assert exceptions == [(sum(1 for i in world.items if i.dmt.exception),)]
    assert all(isinstance(i.dmt.exception_expires, date) for i in world.items if i.dmt.exception)


def _first_entries(item: WorkItem) -> list[tuple[str, datetime]]:
    first: dict[str, datetime] = {TODO: item.created_at}
    for c in item.changes:
        if c.field == "status":
            first.setdefault(c.to_value or TODO, c.at)
    return sorted(first.items(), key=lambda pair: pair[1])


def test_status_changes_are_rebuilt_from_time_in_status(built: dict[str, Any], db_url: str) -> None:
    world = built["world"]

    def rebuilt(item: WorkItem) -> list[tuple[Any, ...]]:
        """ClickUp's reconstruction: first entries in order, plus the current status when it was re-entered."""
        entries = _first_entries(item)
        stints = [(TODO, item.created_at)] + [(c.to_value or TODO, c.at) for c in item.changes if c.field == "status"]
        if stints[-1][1] > entries[-1][1] and stints[-1][0] != entries[-1][0]:
            entries.append(stints[-1])
        return [
            (at_ms(at), STATUSES[before][0], STATUSES[after][0], STATUS_CATEGORY[before], STATUS_CATEGORY[after])
            for (before, _), (after, at) in pairwise(entries)
        ]

    linear = revisited = 0
    for item in world.items:
        assert changes(db_url, item, "status") == rebuilt(item), item.clickup_id
        status_changes = [c for c in item.changes if c.field == "status"]
        if len({c.to_value for c in status_changes}) == len(status_changes):
            linear += 1  # no status visited twice: the rebuilt history is the whole history
            assert rebuilt(item) == [
                (at_ms(c.at), STATUSES[c.from_value or TODO][0], STATUSES[c.to_value or TODO][0],
                 STATUS_CATEGORY[c.from_value or TODO], STATUS_CATEGORY[c.to_value or TODO])
                for c in status_changes
            ]  # fmt: skip
        else:
            revisited += 1  # e.g. blocked, then in progress again: ClickUp lost a change
            assert len(rebuilt(item)) < len(status_changes)
            assert rebuilt(item)[-1][2] == STATUSES[item.status][0]
    assert linear > 20 and revisited > 0


def test_sprint_rows_come_from_the_loads(built: dict[str, Any], db_url: str) -> None:
    world, ws = built["world"], built["ws"]
    first_started, first_done = built["first"]
    second_started, second_done = built["second"]
    leaver, left_sprint, new = built["leaver"], built["left_sprint"], built["new"]
    assert isinstance(left_sprint, Sprint) and new is not None and new.sprint_id is not None

    def sprint_id(sprint: Sprint | None) -> str:
        assert sprint is not None
        return ws.sprint_list_id(sprint)

    # Seen by the first load of a sprint that had started: entered at the sprint's start.
    stayer = next(i for i in world.items if i.sprint_id and i is not leaver and i is not new)
    sprint = world.sprint(stayer.sprint_id)
    assert sprint is not None and sprint.start < first_started
    assert changes(db_url, stayer, "sprint") == [(at_ms(sprint.start), None, sprint_id(sprint), None, None)]
    # Left: at the second load.
    (entered, left) = changes(db_url, leaver, "sprint")
    assert entered == (at_ms(left_sprint.start), None, sprint_id(left_sprint), None, None)
    assert second_started <= left[0] <= second_done and left[1:] == (sprint_id(left_sprint), None, None, None)
    # First seen by a later load: entered then.
    ((changed_at, *rest),) = changes(db_url, new, "sprint")
    assert second_started <= changed_at <= second_done
    assert rest == [None, sprint_id(world.sprint(new.sprint_id)), None, None]
    in_sprints = sum(1 for i in world.items if i.sprint_id) + 1  # the leaver's row stays
    rows = query(
        db_url,
        "select count(*) filter (where to_value is not null), count(*) filter (where from_value is not null)"
        " from staging.stg_clickup__work_item_changes where tenant_id = %s and field = 'sprint'",
        TENANT,
    )
    assert rows == [(in_sprints, 1)]
    assert first_done < second_started


def test_sprints_and_users(built: dict[str, Any], db_url: str) -> None:
    world, ws = built["world"], built["ws"]
    now = datetime.now(UTC)
    rows = query(
        db_url,
        "select sprint_id, sprint_name, project_key, board_id, state, start_at, end_at, completed_at"
        " from staging.stg_clickup__sprints where tenant_id = %s order by start_at, sprint_id",
        TENANT,
    )

    def state(sprint: Sprint) -> str:
        return "closed" if sprint.end <= now else ("active" if sprint.start <= now else "future")

    expected = []
    for sprint in world.sprints:
        project = world.project(sprint.project_key)
        assert project is not None
        expected.append(
            (
                ws.sprint_list_id(sprint),
                sprint_list_name(sprint),
                ws.space_id(project),
                ws.folder_id(project),
                state(sprint),
                at_ms(sprint.start),
                sprint.end,
                sprint.end if state(sprint) == "closed" else None,
            )
        )
    assert rows == sorted(expected, key=lambda r: (r[5], r[0]))
    # Dates agree with the world's own states, except while a sprint past its end is being closed.
    for sprint in world.sprints:
        closing = sprint.end <= now and (sprint.completed_at is None or now < sprint.completed_at)
        assert closing or state(sprint) == sprint.state(now), sprint.name
    assert {r[4] for r in rows} == {"closed", "active", "future"}
    users = query(
        db_url, "select email, display_name from staging.stg_clickup__users where tenant_id = %s order by 1", TENANT
    )
    assert users == sorted((p.email, p.name) for p in world.people)
