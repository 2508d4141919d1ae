"""The sandbox's ClickUp API v2 over real HTTP: layout, task pages and their end signals,
filters, custom fields, time in status, auth, rate limits and faults.

A small server of its own (a small world, short pages), so paging is exercised with few
tasks; expected values come from the tenant's planning world.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from connectors.clickup.helpers import ClickUpClient
from connectors.sandbox import SandboxServer
from connectors.sandbox.clickup import ClickUpWorkspace, ms, sprint_list_name
from connectors.sandbox.clickup.workspace import AC_QUALITY_OPTIONS, STATUSES, UNIT_TEST_STATUS_OPTIONS
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import DONE, WorkItem

#: The sandbox world's day, fixed: a world is a function of its day, so today's world would
#: give the test other items (and maybe none of a case it needs) each day.
WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)

TENANT = "cu_unit"
ALL = {"include_closed": "true", "subtasks": "true"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    sandbox = SandboxServer(seed=7, scale=0.3, work_scale=0.35, history_days=42, now=WORLD_DAY).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def clean(server: SandboxServer) -> Iterator[SandboxServer]:
    server.faults.reset()
    try:
        yield server
    finally:
        server.faults.reset()
        for name in ("clickup_page_size", "clickup_rate_limit"):
            if hasattr(server, name):
                delattr(server, name)


def get(
    server: SandboxServer, path: str, tenant: str | None = TENANT, *, auth: str | None = None, **params: Any
) -> requests.Response:
    headers = {"Authorization": auth if auth is not None else token_for("clickup", tenant)} if tenant else {}
    return requests.get(f"{server.url}/clickup/api/v2{path}", params=params, headers=headers, timeout=10)


def workspace(server: SandboxServer, tenant: str = TENANT) -> ClickUpWorkspace:
    return ClickUpWorkspace(server.work_world(tenant))


def backlog(server: SandboxServer, tenant: str = TENANT) -> tuple[str, list[WorkItem]]:
    ws = workspace(server, tenant)
    project = ws.projects()[0]
    return ws.backlog_id(project), list(ws.world.items_of(project.key))


def walk(server: SandboxServer, list_id: str, **params: Any) -> tuple[list[dict[str, Any]], list[tuple[int, bool]]]:
    """Every task of a list, page by page until ``last_page``; and (size, last_page) per page."""
    tasks: list[dict[str, Any]] = []
    pages: list[tuple[int, bool]] = []
    for page in range(50):
        body = get(server, f"/list/{list_id}/task", page=page, **params).json()
        tasks += body["tasks"]
        pages.append((len(body["tasks"]), body["last_page"]))
        if body["last_page"]:
            return tasks, pages
    raise AssertionError("no last_page after 50 pages")


def test_workspace_layout_renders_the_world(clean: SandboxServer) -> None:
    ws = workspace(clean)
    world = ws.world
    teams = get(clean, "/team").json()["teams"]
    assert [t["id"] for t in teams] == [ws.team_id] and ws.team_id.isdigit()
    assert sorted(m["user"]["email"] for m in teams[0]["members"]) == sorted(p.email for p in world.people)
    spaces = get(clean, f"/team/{ws.team_id}/space").json()["spaces"]
    assert [s["name"] for s in spaces] == [p.name for p in ws.projects()]
    assert [(s["status"], s["type"]) for s in spaces[0]["statuses"]] == [
        ("to do", "open"), ("in progress", "custom"), ("blocked", "custom"), ("in review", "custom"),
        ("complete", "closed"),
    ]  # fmt: skip
    project = ws.projects()[0]
    folders = get(clean, f"/space/{spaces[0]['id']}/folder").json()["folders"]
    assert [f["name"] for f in folders] == ["Sprints"]
    sprints = sorted((s for s in world.sprints if s.project_key == project.key), key=lambda s: s.start)
    lists = get(clean, f"/folder/{folders[0]['id']}/list").json()["lists"]
    assert [(x["name"], x["start_date"], x["due_date"]) for x in lists] == [
        (sprint_list_name(s), ms(s.start), ms(s.end)) for s in sprints
    ]
    first = sprints[0]
    last_day = first.end.date().toordinal() - 1
    assert lists[0]["name"].endswith(
        f"({first.start.month}/{first.start.day} - "
        f"{datetime.fromordinal(last_day).month}/{datetime.fromordinal(last_day).day})"
    )
    folderless = get(clean, f"/space/{spaces[0]['id']}/list").json()["lists"]
    assert [(x["name"], x["folder"]["hidden"]) for x in folderless] == [("Backlog", True)]
    assert get(clean, f"/list/{lists[0]['id']}").json()["id"] == lists[0]["id"]
    types = get(clean, f"/team/{ws.team_id}/custom_item").json()["custom_items"]
    assert {t["name"] for t in types} == {"Story", "Bug", "Epic"}


def test_task_pages_end_on_last_page_and_list_every_task_once(clean: SandboxServer) -> None:
    list_id, items = backlog(clean)
    clean.clickup_page_size = 7  # type: ignore[attr-defined]
    tasks, pages = walk(clean, list_id, **ALL)
    assert sorted(t["id"] for t in tasks) == sorted(i.clickup_id for i in items)
    assert len(tasks) == len({t["id"] for t in tasks})
    full, rest = divmod(len(items), 7)
    assert pages == [(7, False)] * full + [(rest, True)]
    # Past the end: an empty page that says it is the last.
    beyond = get(clean, f"/list/{list_id}/task", page=len(pages) + 3, **ALL).json()
    assert beyond == {"tasks": [], "last_page": True}


def test_a_list_of_a_multiple_of_the_page_size_ends_with_an_empty_page(clean: SandboxServer) -> None:
    list_id, items = backlog(clean)
    clean.clickup_page_size = len(items)  # type: ignore[attr-defined]
    _, pages = walk(clean, list_id, **ALL)
    assert pages == [(len(items), False), (0, True)]


def test_default_listing_leaves_out_closed_tasks_subtasks_and_second_lists(clean: SandboxServer) -> None:
    list_id, items = backlog(clean)
    plain, _ = walk(clean, list_id)
    assert sorted(t["id"] for t in plain) == sorted(
        i.clickup_id for i in items if i.status != DONE and i.parent_id is None
    )
    closed, _ = walk(clean, list_id, include_closed="true")
    assert sorted(t["id"] for t in closed) == sorted(i.clickup_id for i in items if i.parent_id is None)
    # A sprint list is nobody's home list: its members come only with include_timl.
    ws = workspace(clean)
    sprint = next(s for s in ws.world.sprints if any(i.sprint_id == s.id for i in ws.world.items))
    sprint_list = ws.sprint_list_id(sprint)
    assert walk(clean, sprint_list, **ALL)[0] == []
    members, _ = walk(clean, sprint_list, include_timl="true", **ALL)
    assert sorted(t["id"] for t in members) == sorted(i.clickup_id for i in ws.world.items if i.sprint_id == sprint.id)
    assert all(t["list"]["name"] == "Backlog" for t in members)
    assert all(t["locations"] == [{"id": sprint_list, "name": sprint_list_name(sprint)}] for t in members)


def test_date_filters_and_order(clean: SandboxServer) -> None:
    list_id, items = backlog(clean)
    ordered = sorted(items, key=lambda i: i.updated_at)
    low, high = ordered[3].updated_at, ordered[-3].updated_at
    tasks, _ = walk(clean, list_id, date_updated_gt=ms(low), date_updated_lt=ms(high), **ALL)
    expected = [i.clickup_id for i in ordered if int(ms(low) or 0) < int(ms(i.updated_at) or 0) < int(ms(high) or 0)]
    assert sorted(t["id"] for t in tasks) == sorted(expected) and 0 < len(expected) <= len(items) - 6
    ascending, _ = walk(clean, list_id, order_by="updated", reverse="true", **ALL)
    assert [t["id"] for t in ascending] == [
        i.clickup_id for i in sorted(items, key=lambda i: (i.updated_at, i.clickup_id))
    ]
    newest_first, _ = walk(clean, list_id, **ALL)  # order_by created, newest first
    assert [int(t["date_created"]) for t in newest_first] == sorted(
        (int(t["date_created"]) for t in newest_first), reverse=True
    )
    bad = get(clean, f"/list/{list_id}/task", page="first")
    assert bad.status_code == 400 and bad.json()["ECODE"] == "INPUT_003"
    assert get(clean, f"/list/{list_id}/task", order_by="priority").status_code == 400


def test_task_json_and_custom_field_values(clean: SandboxServer) -> None:
    ws = workspace(clean)
    list_id, items = backlog(clean)
    item = next(i for i in items if i.dmt.unit_test_status and i.dmt.ac_quality and i.assignee and i.parent_id)
    task = next(t for t in walk(clean, list_id, **ALL)[0] if t["id"] == item.clickup_id)
    name, kind, _, _ = STATUSES[item.status]
    assert task["status"]["status"] == name and task["status"]["type"] == kind
    assert task["date_updated"] == ms(item.updated_at) and task["date_created"] == ms(item.created_at)
    assert task["assignees"][0]["email"] == item.assignee and task["creator"]["email"] == item.reporter
    parent = ws.world.item(item.parent_id or 0)
    assert parent is not None and task["parent"] == parent.clickup_id
    assert task["custom_item_id"] == {"story": 1300, "bug": 1301, "epic": 1302}.get(item.type, 0)
    values = {f["name"]: f.get("value") for f in task["custom_fields"]}
    ac_quality, unit_test_status = item.dmt.ac_quality or "", item.dmt.unit_test_status or ""
    assert values["Acceptance Criteria Quality"] == AC_QUALITY_OPTIONS.index(ac_quality.title())
    status_label = unit_test_status.replace("_", " ").title()
    assert values["Unit Testing Status"] == UNIT_TEST_STATUS_OPTIONS.index(status_label)
    if item.story_points is not None:
        assert float(values["Story Points"]) == item.story_points
    fields = get(clean, f"/list/{list_id}/field").json()["fields"]
    assert [f["id"] for f in fields] == [f["id"] for f in task["custom_fields"]]
    dropdown = next(f for f in fields if f["name"] == "Acceptance Criteria Quality")
    assert [(o["name"], o["orderindex"]) for o in dropdown["type_config"]["options"]] == [
        ("Incomplete", 0), ("Testable", 1), ("Final", 2),
    ]  # fmt: skip
    # Workspace-level fields have one id in every list; decoys are list-specific.
    sprint_list = ws.sprint_list_id(ws.world.sprints[0])
    sprint_fields = {f["name"]: f["id"] for f in get(clean, f"/list/{sprint_list}/field").json()["fields"]}
    assert sprint_fields["Story Points"] == next(f["id"] for f in fields if f["name"] == "Story Points")
    assert "Sprint Goal" in sprint_fields and "Customer Impact" not in sprint_fields
    bug = next((i for i in ws.world.items if i.caused_by_id), None)
    if bug is not None:
        story = ws.world.item(bug.caused_by_id or 0)
        assert story is not None
        body = get(clean, f"/task/{bug.clickup_id}").json()
        assert [(link["task_id"], link["link_id"]) for link in body["linked_tasks"]] == [
            (bug.clickup_id, story.clickup_id)
        ]


def _stints(item: WorkItem) -> list[tuple[str, datetime]]:
    return [("To Do", item.created_at)] + [(c.to_value or "", c.at) for c in item.changes if c.field == "status"]


def test_time_in_status_keeps_one_entry_per_status(clean: SandboxServer) -> None:
    ws = workspace(clean)
    # An item that went back to a status it had been in (blocked, then in progress again).
    item = next(i for i in ws.world.items if len(_stints(i)) > len({s for s, _ in _stints(i)}))
    body = get(clean, f"/task/{item.clickup_id}/time_in_status").json()
    stints = _stints(item)
    first: dict[str, datetime] = {}
    for status, at in stints:
        first.setdefault(status, at)
    assert [(e["status"], e["total_time"]["since"]) for e in body["status_history"]] == [
        (STATUSES[s][0], ms(first[s])) for s in sorted(first, key=lambda s: STATUSES[s][2])
    ]
    assert len(body["status_history"]) == len(first) < len(stints)
    assert body["current_status"]["status"] == STATUSES[item.status][0]
    assert body["current_status"]["total_time"]["since"] == ms(stints[-1][1])

    some = [i.clickup_id for i in ws.world.items[:3]]
    bulk = requests.get(
        f"{clean.url}/clickup/api/v2/task/bulk_time_in_status/task_ids",
        params=[("task_ids", task_id) for task_id in some],
        headers={"Authorization": token_for("clickup", TENANT)},
        timeout=10,
    ).json()
    assert sorted(bulk) == sorted(some)
    assert bulk[item.clickup_id] == body if item.clickup_id in some else True
    too_many = requests.get(
        f"{clean.url}/clickup/api/v2/task/bulk_time_in_status/task_ids",
        params=[("task_ids", f"8{n:08d}") for n in range(101)],
        headers={"Authorization": token_for("clickup", TENANT)},
        timeout=10,
    )
    assert too_many.status_code == 400 and too_many.json()["ECODE"] == "TASK_118"


def test_tokens_decide_the_tenant_and_what_it_may_read(clean: SandboxServer) -> None:
    ws = workspace(clean)
    missing = get(clean, "/team", tenant=None)
    assert (missing.status_code, missing.json()) == (
        401,
        {"err": "Authorization header required", "ECODE": "OAUTH_017"},
    )
    for auth in ("pk_live_123", "Bearer ghs_sandbox_cu_unit", token_for("jira", TENANT)):
        answer = get(clean, "/team", auth=auth)
        assert (answer.status_code, answer.json()) == (401, {"err": "Token invalid", "ECODE": "OAUTH_025"})
    assert get(clean, "/team", auth=f"Bearer {token_for('clickup', TENANT)}").json()["teams"][0]["id"] == ws.team_id
    # Another tenant sees its own Workspace; ours is not authorized for it.
    other = get(clean, "/team", tenant="cu_other").json()["teams"][0]["id"]
    assert other != ws.team_id
    refused = get(clean, f"/team/{other}/space")
    assert (refused.status_code, refused.json()["ECODE"]) == (401, "OAUTH_027")
    unknown = get(clean, "/list/901600000000/task")
    assert (unknown.status_code, unknown.json()) == (401, {"err": "Team(s) not authorized", "ECODE": "OAUTH_023"})
    # A token without permission authenticates but may not read the Workspace.
    noperm = token_for("clickup", TENANT, noperm=True)
    assert get(clean, "/team", auth=noperm).status_code == 200
    for path in (f"/team/{ws.team_id}/space", f"/list/{ws.backlog_id(ws.projects()[0])}/task"):
        answer = get(clean, path, auth=noperm)
        assert (answer.status_code, answer.json()) == (401, {"err": "Team not authorized", "ECODE": "OAUTH_027"})
    assert get(clean, "/nope").json() == {"err": "Route not found", "ECODE": "APP_001"}


def test_rate_limit_headers_and_quota(clean: SandboxServer) -> None:
    clean.clickup_rate_limit = 3  # type: ignore[attr-defined]
    answers = [get(clean, "/team", tenant="cu_quota") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    reset = int(answers[-1].headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    assert answers[-1].json() == {"err": "Rate limit reached", "ECODE": "APP_002"}
    assert "Retry-After" not in answers[-1].headers
    # Unauthenticated answers carry the headers too.
    assert "X-RateLimit-Reset" in get(clean, "/team", tenant=None).headers


def test_faults_are_answered_as_clickup_does(clean: SandboxServer) -> None:
    faults = clean.faults
    faults.expired_token, faults.too_many_requests, faults.server_errors = 1, 1, 1
    expired, limited, failed = (get(clean, "/team") for _ in range(3))
    assert (expired.status_code, expired.json()) == (401, {"err": "Oauth token not found", "ECODE": "OAUTH_019"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert failed.status_code == 500 and failed.json()["ECODE"] == "APP_500"
    assert get(clean, "/team").status_code == 200
    faults.slow_responses, faults.slow_seconds = 1, 0.3
    started = time.monotonic()
    assert get(clean, "/team").status_code == 200
    assert time.monotonic() - started >= 0.3

    faults.malformed_work_item = True
    ws = workspace(clean)
    target = ws.world.malformed_target()
    home = ws.lists(ws.world.project(target.project_key))[0]
    tasks, _ = walk(clean, home.id, **ALL)
    broken = next(t for t in tasks if t["id"] == target.clickup_id)
    assert broken["status"] == STATUSES[target.status][0] and broken["date_updated"] == "yesterday, after lunch"
    assert all(isinstance(t["status"], dict) for t in tasks if t["id"] != target.clickup_id)
    assert datetime.fromtimestamp(int(tasks[0]["date_created"]) / 1000, UTC).year >= 2025


def test_the_connectors_page_walk_stops_on_last_page_or_an_empty_page(clean: SandboxServer) -> None:
    list_id, items = backlog(clean)
    client = ClickUpClient(f"{clean.url}/clickup", token_for("clickup", TENANT), source_name="clickup")
    for size, pages in ((len(items), [len(items)]), (len(items) + 1, [len(items)]), (4, None)):
        clean.clickup_page_size = size  # type: ignore[attr-defined]
        mark = len(clean.requests)
        walked = list(client.task_pages(list_id, ALL))
        expected = pages or [4] * (len(items) // 4) + ([len(items) % 4] if len(items) % 4 else [])
        assert [len(page) for page in walked] == expected
        requested = [r.path for r in clean.requests_since(mark)]
        # A full last page says last_page false: the walk asks once more and stops on the empty page.
        extra = 1 if len(items) % size == 0 else 0
        assert len(requested) == len(expected) + extra
        assert [f"page={n}" in path for n, path in enumerate(requested)] == [True] * len(requested)
    assert sorted(t["id"] for page in walked for t in page) == sorted(i.clickup_id for i in items)
