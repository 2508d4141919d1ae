"""The Jira staging models over a real load: ``dbt build --select staging.jira`` (models and their
tests), then every row compared with the tenant's planning world.

The tenant is registered in ``control.tenants`` first: dbt only reads raw schemas of known tenants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, overload

import psycopg
import pytest

from connectors.jira import jira_policy, jira_source, load_jira
from connectors.sandbox import SandboxServer
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import STATUS_CATEGORY, WorkWorld
from pulse import control
from pulse.db import admin_engine
from tests.conftest import run_dbt

#: The sandbox world's day, fixed: a world is a function of its day, so today's world would
#: give the test other items (and maybe none of a case it needs) each day.
WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)

TENANT = "jira_dbt"


@pytest.fixture(scope="module")
def world(settings: Any, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkWorld]:
    """The tenant's world: loaded, advanced, loaded again (incrementally), then built by dbt."""
    with admin_engine(settings).begin() as conn:
        control.add_tenant(conn, TENANT, "Jira staging", actor="test")
    server = SandboxServer(host="127.0.0.1", port=0, seed=7, work_scale=0.3, history_days=60, now=WORLD_DAY).start()
    try:
        pipelines = tmp_path_factory.mktemp("jira_dbt")
        for run in range(2):
            if run:
                server.advance_work_items(TENANT, 4)
            source = jira_source(
                f"{server.url}/jira",
                {"email": "pulse@jira-dbt.example", "token": token_for("jira", TENANT)},
                {},
                page_size=50,
                retry_policy=jira_policy(server_error_backoff=0.05),
            )
            load_jira(TENANT, db_url, source, pipelines_dir=str(pipelines))
        run_dbt(["build", "--select", "staging.jira"])
        yield server.work_world(TENANT)
    finally:
        server.stop()


def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, (TENANT,)).fetchall()


@overload
def ms(moment: datetime) -> datetime: ...
@overload
def ms(moment: datetime | None) -> datetime | None: ...
def ms(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_work_items_match_the_world(world: WorkWorld, db_url: str) -> None:
    loaded = world.items
    found = {
        row[0]: row[1:]
        for row in rows(
            db_url,
            "select work_item_id, source_system, work_item_key, project_key, project_name, item_type, native_type, "
            "title, status, status_category, story_points, sprint_id, assignee_email, reporter_email, parent_id, "
            "caused_by_id, created_at, resolved_at, url from staging.stg_jira__work_items where tenant_id = %s",
        )
    }
    projects = {p.key: p.name for p in world.projects}
    assert found == {
        str(item.id): (
            "jira", item.key, item.project_key, projects[item.project_key], item.type, item.type.capitalize(),
            item.title, item.status, item.status_category,
            None if item.story_points is None else Decimal(str(item.story_points)),
            str(item.sprint_id) if item.sprint_id else None, item.assignee, item.reporter,
            str(item.parent_id) if item.parent_id else None, str(item.caused_by_id) if item.caused_by_id else None,
            ms(item.created_at), ms(item.resolved_at), found[str(item.id)][-1],
        )
        for item in loaded
    }  # fmt: skip
    assert all(row[-1].endswith(f"/jira/browse/{row[1]}") for row in found.values())
    dmt = {
        row[0]: row[1:]
        for row in rows(
            db_url,
            "select work_item_id, dmt_ac_quality, dmt_unit_test_task, dmt_unit_test_status, dmt_coverage_pct, "
            "dmt_pr_links, dmt_ci_evidence, dmt_reviewer_signoff, dmt_exception, dmt_exception_reason, "
            "dmt_exception_approver, dmt_exception_expires from staging.stg_jira__work_items where tenant_id = %s",
        )
    }
    assert dmt == {
        str(item.id): (
            d.ac_quality, d.unit_test_task, d.unit_test_status,
            None if d.coverage_pct is None else Decimal(str(d.coverage_pct)), "\n".join(d.pr_links) or None,
            d.ci_evidence, d.reviewer_signoff, d.exception, d.exception_reason, d.exception_approver,
            d.exception_expires,
        )
        for item in loaded
        for d in [item.dmt]
    }  # fmt: skip
    # The world has what the mapping must carry: approved exceptions, bugs traced to stories.
    assert sum(1 for d in dmt.values() if d[7] and d[9] and d[10]) == sum(1 for i in loaded if i.dmt.exception) > 0
    assert sum(1 for row in found.values() if row[14]) == sum(1 for i in loaded if i.caused_by_id) > 0
    assert Counter(row[4] for row in found.values()) == Counter(item.type for item in loaded)


def test_changes_explode_the_sprint_list_and_resolve_emails(world: WorkWorld, db_url: str) -> None:
    found = Counter(
        rows(
            db_url,
            "select work_item_id, changed_at, field, from_value, to_value, author_email, from_status_category, "
            "to_status_category from staging.stg_jira__work_item_changes where tenant_id = %s",
        )
    )
    expected: Counter[tuple[Any, ...]] = Counter()
    for item in world.items:
        for change in item.changes:
            head = (str(item.id), ms(change.at))
            if change.field == "status":
                categories = (
                    STATUS_CATEGORY[change.from_value or "To Do"],
                    STATUS_CATEGORY[change.to_value or "To Do"],
                )
                expected[(*head, "status", change.from_value, change.to_value, change.author, *categories)] += 1
            elif change.field == "sprint":
                # Jira's Sprint field keeps a closed sprint when the item is carried over: only B is entered.
                if change.from_value and change.kind != "carried_over":
                    expected[(*head, "sprint", change.from_value, None, change.author, None, None)] += 1
                if change.to_value:
                    expected[(*head, "sprint", None, change.to_value, change.author, None, None)] += 1
            else:
                expected[(*head, change.field, change.from_value, change.to_value, change.author, None, None)] += 1
    assert found == expected
    kinds = Counter(c.kind for item in world.items for c in item.changes if c.field == "sprint")
    assert kinds["carried_over"] and kinds["removed"] and kinds["added"]
    # Counter to Counter: a field the day's world never changed (count 0) is simply absent.
    assert Counter(row[2] for row in found.elements()) == Counter(
        {
            "status": sum(1 for i in world.items for c in i.changes if c.field == "status"),
            "assignee": sum(1 for i in world.items for c in i.changes if c.field == "assignee"),
            "story_points": sum(1 for i in world.items for c in i.changes if c.field == "story_points"),
            "sprint": kinds["added"] + kinds["removed"] + kinds["carried_over"],  # a carry-over: B entered, A kept
        }
    )


def test_sprints_and_users(world: WorkWorld, db_url: str) -> None:
    found = set(
        rows(
            db_url,
            "select sprint_id, sprint_name, project_key, board_id, state, start_at, end_at, completed_at "
            "from staging.stg_jira__sprints where tenant_id = %s",
        )
    )
    boards = {p.key: str(n + 1) for n, p in enumerate(world.projects)}
    assert found == {
        (str(s.id), s.name, s.project_key, boards[s.project_key], s.state(world.clock), ms(s.start), ms(s.end),
         ms(s.completed_at) if s.state(world.clock) == "closed" else None)
        for s in world.sprints
    }  # fmt: skip
    assert Counter(row[4] for row in found) == Counter(s.state(world.clock) for s in world.sprints)
    users = rows(db_url, "select email, display_name from staging.stg_jira__users where tenant_id = %s")
    assert sorted(users, key=str) == sorted(
        [(p.email, p.name) for p in world.people] + [(None, "Automation for Jira")], key=str
    )
