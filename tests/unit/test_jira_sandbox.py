"""The Jira sandbox over real HTTP: Jira's paging and its end signals, JQL in the caller's time
zone, cut-short changelogs and the endpoints that complete them, authentication, permissions,
rate limits, faults and hard limits. Expected values come from the tenant's planning world.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from connectors.sandbox import SandboxServer
from connectors.sandbox.jira import EMBEDDED_HISTORIES, SPRINT_FIELD, STORY_POINTS_FIELD, Site
from connectors.sandbox.jira.render import DMT_FIELDS, STATUS_IDS, account_id
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import WorkItem, WorkWorld

WORLD_DAY = datetime(2026, 11, 22, tzinfo=UTC)
TENANT = "jira_unit"
YORK = ZoneInfo("America/New_York")
SEARCH = "/rest/api/3/search/jql"


@pytest.fixture(scope="module")
def jira() -> Iterator[SandboxServer]:
    # A fixed day: the world is a function of the day, and these tests need a post-release bug,
    # a re-opened item and the other rarer facts that a given day's world may lack.
    server = SandboxServer(host="127.0.0.1", port=0, seed=42, now=WORLD_DAY, work_scale=0.3, history_days=60).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def world(jira: SandboxServer) -> WorkWorld:
    return jira.work_world(TENANT)


@pytest.fixture(autouse=True)
def clean_faults(jira: SandboxServer) -> Iterator[None]:
    jira.faults.reset()
    yield
    jira.faults.reset()


def call(
    jira: SandboxServer,
    path: str,
    *,
    tenant: str = TENANT,
    auth: Any = "basic",
    method: str = "GET",
    body: Any = None,
    **params: Any,
) -> requests.Response:
    headers = {}
    if auth == "basic":
        auth = (f"pulse@{tenant}.example", token_for("jira", tenant))
    elif auth == "bearer":
        headers["Authorization"] = f"Bearer {token_for('jira', tenant)}"
        auth = None
    elif auth == "noperm":
        auth = (f"pulse@{tenant}.example", token_for("jira", tenant, noperm=True))
    return requests.request(
        method, f"{jira.url}/jira{path}", params=params, json=body, auth=auth, headers=headers, timeout=10
    )


def search_all(jira: SandboxServer, jql: str, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every issue of a search, and every page envelope (without its issues)."""
    issues: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    token = None
    while True:
        extra: dict[str, str] = {"nextPageToken": token} if token else {}
        response = call(jira, SEARCH, jql=jql, **params, **extra)
        assert response.status_code == 200, response.text
        body = response.json()
        issues += body["issues"]
        pages.append({k: v for k, v in body.items() if k != "issues"} | {"count": len(body["issues"])})
        token = body.get("nextPageToken")
        if not token:
            return issues, pages


def local_minute(moment: datetime, delta_minutes: int = 0) -> str:
    return (moment.astimezone(YORK) + timedelta(minutes=delta_minutes)).strftime("%Y/%m/%d %H:%M")


# -- search and its paging --------------------------------------------------------------------------


def test_search_pages_by_token_until_there_is_none(jira: SandboxServer, world: WorkWorld) -> None:
    project = world.projects[0]
    issues, pages = search_all(jira, f"project = {project.key} ORDER BY created ASC", maxResults=7, fields="summary")
    expected = sorted(world.items_of(project.key), key=lambda i: (i.created_at, i.number))
    assert [i["key"] for i in issues] == [i.key for i in expected]
    assert len(pages) == -(-len(expected) // 7)
    assert all("total" not in page for page in pages)  # the new search has no total
    assert [(p["isLast"], "nextPageToken" in p) for p in pages] == [(False, True)] * (len(pages) - 1) + [(True, False)]
    assert [p["count"] for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert issues[0]["fields"] == {"summary": expected[0].title}
    # No fields asked for: ids only.
    ids, _ = search_all(jira, f"project = {project.key} ORDER BY key DESC", maxResults=50)
    assert ids == [{"id": str(i.id)} for i in sorted(expected, key=lambda i: -i.number)]


def test_token_paging_is_stable_while_issues_change(jira: SandboxServer) -> None:
    tenant = "jira_unit_moving"
    world = jira.work_world(tenant)
    jql = f"project in ({', '.join(p.key for p in world.projects)}) ORDER BY created ASC"
    first = call(jira, SEARCH, tenant=tenant, jql=jql, maxResults=10).json()
    before = {item.id for item in world.items}
    change = jira.advance_work_items(tenant, 5)  # updates five issues and creates one
    seen = [int(i["id"]) for i in first["issues"]]
    token = first["nextPageToken"]
    while token:
        body = call(jira, SEARCH, tenant=tenant, jql=jql, maxResults=10, nextPageToken=token).json()
        seen += [int(i["id"]) for i in body["issues"]]
        token = body.get("nextPageToken")
    assert len(seen) == len(set(seen)) == len(before) + 1
    assert set(seen) == before | set(change.new_item_ids) and seen[-1] == change.new_item_ids[0]


def test_tokens_belong_to_their_query(jira: SandboxServer, world: WorkWorld) -> None:
    key = world.projects[0].key
    token = call(jira, SEARCH, jql=f"project = {key}", maxResults=1).json()["nextPageToken"]
    other = call(jira, SEARCH, jql=f"project = {world.projects[1].key}", nextPageToken=token)
    assert other.status_code == 400 and "belongs to another query" in other.json()["errorMessages"][0]
    assert call(jira, SEARCH, jql=f"project = {key}", nextPageToken="garbage").status_code == 400


def test_search_by_post_takes_the_same_query(jira: SandboxServer, world: WorkWorld) -> None:
    key = world.projects[0].key
    body = {"jql": f"project = {key} ORDER BY created ASC", "fields": ["summary", "status"], "maxResults": 3}
    answer = call(jira, SEARCH, method="POST", body=body).json()
    got = call(jira, SEARCH, jql=body["jql"], fields="summary,status", maxResults=3).json()
    assert answer["issues"] == got["issues"] and set(answer["issues"][0]["fields"]) == {"summary", "status"}


def test_max_results_is_capped_as_jira_caps_it(sandbox: SandboxServer) -> None:
    tenant = "acme"
    world = sandbox.work_world(tenant)
    assert len(world.items) > 100
    jql = f"project in ({', '.join(p.key for p in world.projects)})"
    auth = (f"pulse@{tenant}.example", token_for("jira", tenant))

    def count(**params: Any) -> int:
        response = requests.get(f"{sandbox.url}/jira{SEARCH}", params={"jql": jql, **params}, auth=auth, timeout=30)
        return len(response.json()["issues"])

    assert count(maxResults=5000) == len(world.items)  # ids only: up to 5000
    assert count(maxResults=500, fields="summary") == 100
    assert count(maxResults=500, fields="summary", expand="changelog") == 50
    assert count(fields="summary") == 50  # the default


# -- JQL ------------------------------------------------------------------------------------------------


def test_jql_dates_are_read_in_the_callers_zone_to_the_minute(jira: SandboxServer, world: WorkWorld) -> None:
    me = call(jira, "/rest/api/3/myself").json()
    assert me["timeZone"] == "America/New_York" and me["emailAddress"] == f"pulse@{TENANT}.example"
    item = max((i for i in world.items if i.updated_at.second), key=lambda i: i.updated_at)  # not on the minute
    minute = local_minute(item.updated_at)

    def ids(jql: str) -> set[int]:
        issues, _ = search_all(jira, jql, maxResults=100)
        return {int(i["id"]) for i in issues}

    key = item.project_key
    assert item.id in ids(f'project = {key} AND updated >= "{minute}"')
    assert item.id not in ids(f'project = {key} AND updated >= "{local_minute(item.updated_at, 1)}"')
    # Read in UTC, the same wall time would be hours off.
    utc_minute = item.updated_at.astimezone(UTC).strftime("%Y/%m/%d %H:%M")
    assert item.id not in ids(f'project = {key} AND updated >= "{utc_minute}"')
    assert item.id in ids(f"project = {key} AND updated <= '{local_minute(item.updated_at, 1)}'")
    assert item.id not in ids(f'project = {key} AND updated <= "{minute}"')  # 10:15:30 is after 10:15
    window = ids(f'project = {key} AND updated >= "{local_minute(world.now - timedelta(days=20))}" AND '
                 f'updated <= "{local_minute(world.now - timedelta(days=10))}"')  # fmt: skip
    assert window == {
        i.id for i in world.items_of(key)
        if world.now - timedelta(days=20) <= i.updated_at <= world.now - timedelta(days=10)
    }  # fmt: skip
    both = ids(f"project in ({world.projects[0].key}, {world.projects[1].key.lower()}) AND created >= 2020-01-01")
    assert both == {i.id for i in world.items if i.project_key in (world.projects[0].key, world.projects[1].key)}
    assert ids(f'key in ("{item.key}") AND id = {item.id}') == {item.id}


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("ORDER BY created ASC", "Unbounded JQL queries are not allowed here. Please add a search restriction"),
        ("", "Unbounded JQL queries are not allowed here."),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("project = {p} OR project = {q}", "supports only AND between clauses, not 'OR'"),
        ("assignee = currentUser()", "Field 'assignee' does not exist or you do not have permission to view it."),
        ('project = {p} AND updated >= "yesterday"', "Date value 'yesterday' for field 'updated' is invalid."),
        ("project = {p} ORDER BY rank", "Not able to sort using field 'rank'."),
        ("project ~ {p}", "The operator '~' is not supported by the 'project' field."),
        ("(project = {p})", "does not support '(' here"),
    ],
)
def test_anything_else_is_a_400_in_jiras_shape(jira: SandboxServer, world: WorkWorld, jql: str, message: str) -> None:
    text = jql.format(p=world.projects[0].key, q=world.projects[1].key)
    response = call(jira, SEARCH, jql=text)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"errorMessages", "errors"} and message in body["errorMessages"][0]


def test_relative_dates_work(jira: SandboxServer, world: WorkWorld) -> None:
    key = world.projects[0].key
    issues, _ = search_all(jira, f"project = {key} AND updated >= -3650d", maxResults=100)
    assert len(issues) == sum(1 for _ in world.items_of(key))


def test_the_retired_search_answers_410(jira: SandboxServer, world: WorkWorld) -> None:
    for path in ("/rest/api/2/search", "/rest/api/3/search"):
        response = call(jira, path, jql=f"project = {world.projects[0].key}")
        assert response.status_code == 410
        assert "Please migrate to the /rest/api/3/search/jql API" in response.json()["errorMessages"][0]


# -- changelogs ------------------------------------------------------------------------------------------


def long_item(jira: SandboxServer, world: WorkWorld) -> WorkItem:
    site = Site(world, f"{jira.url}/jira")
    return max(world.items, key=lambda i: len(site.histories(i)))


def test_expand_changelog_embeds_the_newest_twenty(jira: SandboxServer, world: WorkWorld) -> None:
    item = long_item(jira, world)
    site = Site(world, f"{jira.url}/jira")
    every = site.histories(item)
    assert len(every) > EMBEDDED_HISTORIES
    body = call(jira, SEARCH, jql=f"key = {item.key}", fields="summary", expand="changelog").json()
    changelog = body["issues"][0]["changelog"]
    assert (changelog["startAt"], changelog["maxResults"], changelog["total"]) == (0, 20, len(every))
    assert [h["id"] for h in changelog["histories"]] == [h["id"] for h in reversed(every)][:20]
    created = [datetime.fromisoformat(h["created"]) for h in changelog["histories"]]
    assert created == sorted(created, reverse=True)


def test_the_issue_changelog_pages_oldest_first_until_is_last(jira: SandboxServer, world: WorkWorld) -> None:
    item = long_item(jira, world)
    every = Site(world, f"{jira.url}/jira").histories(item)
    values, start, pages = [], 0, []
    while True:
        body = call(jira, f"/rest/api/3/issue/{item.key}/changelog", startAt=start, maxResults=7).json()
        values += body["values"]
        pages.append((body["startAt"], body["isLast"], "nextPage" in body, body["total"]))
        if body["isLast"]:
            break
        start += len(body["values"])
    assert [h["id"] for h in values] == [h["id"] for h in every]
    assert pages[-1][1:3] == (True, False) and all(p[1:3] == (False, True) for p in pages[:-1])
    by_id = call(jira, f"/rest/api/3/issue/{item.id}/changelog", maxResults=1000).json()
    assert len(by_id["values"]) == min(100, len(every))


def test_bulk_changelogs_page_by_token_across_issues(jira: SandboxServer, world: WorkWorld) -> None:
    site = Site(world, f"{jira.url}/jira")
    items = sorted(world.items, key=lambda i: -len(site.histories(i)))[:3]
    body: dict[str, Any] = {"issueIdsOrKeys": [items[0].key, str(items[1].id), items[2].key, "NOPE-1"], "maxResults": 9}
    got: dict[str, list[str]] = {}
    pages = 0
    while True:
        answer = call(jira, "/rest/api/3/changelog/bulkfetch", method="POST", body=body).json()
        pages += 1
        for log in answer["issueChangeLogs"]:
            got.setdefault(log["issueId"], []).extend(h["id"] for h in log["changeHistories"])
        if "nextPageToken" not in answer:
            break
        body["nextPageToken"] = answer["nextPageToken"]
    assert got == {str(i.id): [h["id"] for h in site.histories(i)] for i in items}
    assert pages == -(-sum(len(site.histories(i)) for i in items) // 9)
    only_status = call(jira, "/rest/api/3/changelog/bulkfetch", method="POST",
                       body={"issueIdsOrKeys": [items[0].key], "fieldIds": ["status"]}).json()  # fmt: skip
    (log,) = only_status["issueChangeLogs"]
    assert len(log["changeHistories"]) == sum(1 for c in items[0].changes if c.field == "status")
    assert {e["fieldId"] for h in log["changeHistories"] for e in h["items"]} == {"status"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"issueIdsOrKeys": []}, "issueIdsOrKeys must list between 1 and 1000"),
        ({"issueIdsOrKeys": [str(n) for n in range(1001)]}, "issueIdsOrKeys must list between 1 and 1000"),
        ({"issueIdsOrKeys": ["1"], "fieldIds": [str(n) for n in range(11)]}, "fieldIds must list at most 10"),
        ({"issueIdsOrKeys": ["1"], "maxResults": "many"}, "'many' is not a valid number"),
    ],
)
def test_bulk_changelog_limits(jira: SandboxServer, body: dict[str, Any], message: str) -> None:
    response = call(jira, "/rest/api/3/changelog/bulkfetch", method="POST", body=body)
    assert response.status_code == 400 and message in response.json()["errorMessages"][0]


def test_histories_tell_the_worlds_changes_in_jiras_terms(jira: SandboxServer, world: WorkWorld) -> None:
    site = Site(world, f"{jira.url}/jira")
    carried = next(i for i in world.items if any(c.kind == "carried_over" for c in i.changes))
    number, change = next((n, c) for n, c in enumerate(carried.changes) if c.kind == "carried_over")
    (entry,) = next(h for h in site.histories(carried) if h["id"] == str(carried.id * 1000 + number))["items"]
    assert (entry["field"], entry["fieldId"], entry["fieldtype"]) == ("Sprint", SPRINT_FIELD, "custom")
    assert entry["to"].split(", ")[-1] == change.to_value and change.from_value in entry["to"].split(", ")
    assert entry["from"].split(", ")[-1] == change.from_value  # the closed sprint stays in the list
    removed = next(i for i in world.items if any(c.kind == "removed" for c in i.changes))
    number, change = next((n, c) for n, c in enumerate(removed.changes) if c.kind == "removed")
    (entry,) = next(h for h in site.histories(removed) if h["id"] == str(removed.id * 1000 + number))["items"]
    assert change.from_value in entry["from"].split(", ") and change.from_value not in entry["to"].split(", ")
    status = next((n, c) for n, c in enumerate(carried.changes) if c.field == "status")
    (entry,) = next(h for h in site.histories(carried) if h["id"] == str(carried.id * 1000 + status[0]))["items"]
    assert (entry["from"], entry["fromString"], entry["to"], entry["toString"]) == (
        STATUS_IDS[status[1].from_value or ""], status[1].from_value, STATUS_IDS[status[1].to_value or ""],
        status[1].to_value,
    )  # fmt: skip
    history = next(h for h in site.histories(carried) if h["id"] == str(carried.id * 1000 + status[0]))
    assert history["author"]["accountId"] == account_id(status[1].author) and "emailAddress" not in history["author"]


# -- issues, agile, metadata --------------------------------------------------------------------------------


def test_issues_carry_the_worlds_facts_in_jiras_shapes(jira: SandboxServer, world: WorkWorld) -> None:
    bug = next(i for i in world.items if i.caused_by_id)
    issue = call(jira, f"/rest/api/3/issue/{bug.key}").json()
    fields = issue["fields"]
    assert (issue["id"], issue["key"], fields["issuetype"]["name"]) == (str(bug.id), bug.key, "Bug")
    assert fields["status"]["name"] == bug.status
    category = {"todo": "new", "in_progress": "indeterminate", "done": "done"}[bug.status_category]
    assert fields["status"]["statusCategory"]["key"] == category
    local = bug.created_at.astimezone(YORK)
    assert fields["created"] == local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + (
        local.strftime("%z")
    )
    assert fields["created"][-5:] in ("-0500", "-0400")
    (link,) = fields["issuelinks"]
    assert (link["type"]["name"], link["type"]["inward"], link["inwardIssue"]["id"]) == (
        "Problem/Incident", "is caused by", str(bug.caused_by_id),
    )  # fmt: skip
    story = call(jira, f"/rest/api/3/issue/{bug.caused_by_id}").json()
    assert any(lk.get("outwardIssue", {}).get("id") == str(bug.id) for lk in story["fields"]["issuelinks"])
    excepted = next(i for i in world.items if i.dmt.exception)
    fields = call(jira, f"/rest/api/3/issue/{excepted.key}").json()["fields"]
    dmt = excepted.dmt
    assert fields[DMT_FIELDS["exception"][0]] == [{"self": f"{jira.url}/jira/rest/api/3/customFieldOption/10240",
                                                   "value": "Yes", "id": "10240"}]  # fmt: skip
    assert fields[DMT_FIELDS["unit_test_status"][0]]["value"] == "Exception approved"
    assert fields[DMT_FIELDS["exception_approver"][0]]["emailAddress"] == dmt.exception_approver
    assert fields[DMT_FIELDS["exception_expires"][0]] == dmt.exception_expires.isoformat()  # type: ignore[union-attr]
    assert fields[DMT_FIELDS["exception_reason"][0]]["type"] == "doc"  # ADF in API v3
    v2 = call(jira, f"/rest/api/2/issue/{excepted.key}").json()["fields"]
    assert v2[DMT_FIELDS["exception_reason"][0]] == dmt.exception_reason  # plain text in API v2
    assert fields[STORY_POINTS_FIELD] == excepted.story_points
    sprints = fields[SPRINT_FIELD] or []
    assert excepted.sprint_id is None or excepted.sprint_id in [s["id"] for s in sprints]
    epic_child = next(i for i in world.items if i.parent_id)
    child = call(jira, f"/rest/api/3/issue/{epic_child.id}", fields="parent").json()["fields"]
    assert child["parent"]["id"] == str(epic_child.parent_id)
    assert child["parent"]["fields"]["issuetype"]["name"] == "Epic"


def test_boards_and_sprints_page_until_is_last(jira: SandboxServer, world: WorkWorld) -> None:
    boards = call(jira, "/rest/agile/1.0/board").json()
    assert (boards["isLast"], boards["total"]) == (True, len(world.projects))
    assert [(b["id"], b["type"], b["location"]["projectKey"]) for b in boards["values"]] == [
        (n + 1, "scrum", p.key) for n, p in enumerate(world.projects)
    ]
    one = call(jira, "/rest/agile/1.0/board", projectKeyOrId=world.projects[1].key).json()["values"]
    assert [b["id"] for b in one] == [2]
    values, start, ends = [], 0, []
    while True:
        page = call(jira, "/rest/agile/1.0/board/1/sprint", startAt=start, maxResults=4).json()
        assert "total" not in page
        values += page["values"]
        ends.append(page["isLast"])
        if page["isLast"]:
            break
        start += len(page["values"])
    mine = sorted((s for s in world.sprints if s.project_key == world.projects[0].key), key=lambda s: s.start)
    assert [v["id"] for v in values] == [s.id for s in mine] and ends[-1] and not any(ends[:-1])
    assert all(("completeDate" in v) == (v["state"] == "closed") for v in values)
    assert {v["originBoardId"] for v in values} == {1}
    active = call(jira, "/rest/agile/1.0/board/1/sprint", state="active").json()["values"]
    assert [v["id"] for v in active] == [s.id for s in mine if s.state(world.clock) == "active"]
    assert call(jira, "/rest/agile/1.0/board/1/sprint", state="open").status_code == 400
    assert call(jira, "/rest/agile/1.0/board/99/sprint").status_code == 404


def test_users_end_on_an_empty_page_and_metadata_lists(jira: SandboxServer, world: WorkWorld) -> None:
    seen, start = [], 0
    while True:
        page = call(jira, "/rest/api/3/users/search", startAt=start, maxResults=4).json()
        if not page:
            break
        seen += page
        start += 4
    assert [u.get("emailAddress") for u in seen] == [p.email for p in world.people] + [None]
    assert seen[-1]["accountType"] == "app"
    statuses = {s["name"]: s["statusCategory"]["key"] for s in call(jira, "/rest/api/3/status").json()}
    assert statuses["Blocked"] == "indeterminate" and statuses["Done"] == "done" and statuses["To Do"] == "new"
    fields = {f["id"]: f for f in call(jira, "/rest/api/2/field").json()}
    assert fields == {f["id"]: f for f in call(jira, "/rest/api/3/field").json()}
    assert fields[SPRINT_FIELD]["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-sprint"
    assert fields[STORY_POINTS_FIELD]["schema"] == {"type": "number", "custom":
        "com.pyxis.greenhopper.jira:jsw-story-points", "customId": 10024}  # fmt: skip
    decoy = next(f for f in fields.values() if f["name"] == "Story Points (old)")
    assert decoy["schema"]["type"] == "string"
    assert "schema" not in fields["issuekey"]
    projects = call(jira, "/rest/api/3/project/search").json()
    assert [p["key"] for p in projects["values"]] == [p.key for p in world.projects] and projects["isLast"]
    one = call(jira, f"/rest/api/3/project/{world.projects[0].key.lower()}").json()
    assert (one["key"], one["lead"]["displayName"]) == (
        world.projects[0].key,
        world.leads(world.projects[0].team)[0].name,
    )


# -- authentication, permissions, rate limits, faults -----------------------------------------------------


def test_authentication(jira: SandboxServer) -> None:
    assert call(jira, "/rest/api/3/myself").status_code == 200
    bearer = call(jira, "/rest/api/3/myself", auth="bearer")
    assert bearer.status_code == 200 and bearer.json()["timeZone"] == "America/New_York"
    wrong = call(jira, "/rest/api/3/myself", auth=("pulse@x.example", "atl_sandbox_"))
    assert (wrong.status_code, wrong.headers["content-type"]) == (401, "text/plain;charset=UTF-8")
    assert wrong.text == "Client must be authenticated to access this resource."
    assert wrong.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"
    assert call(jira, "/rest/api/3/myself", auth=("not-an-email", token_for("jira", TENANT))).status_code == 401
    anonymous = call(jira, "/rest/api/3/myself", auth=None)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"errorMessages": ["You are not authenticated. Authentication required to perform "
                                                  "this operation."], "errors": {}}  # fmt: skip


def test_a_token_without_permissions_sees_no_project(jira: SandboxServer, world: WorkWorld) -> None:
    key = world.projects[0].key
    assert call(jira, "/rest/api/3/myself", auth="noperm").status_code == 200
    assert call(jira, "/rest/api/3/field", auth="noperm").status_code == 200
    assert call(jira, "/rest/api/3/project/search", auth="noperm").json()["values"] == []
    missing = call(jira, f"/rest/api/3/project/{key}", auth="noperm")
    assert missing.status_code == 404
    assert missing.json()["errorMessages"] == [f"No project could be found with key '{key}'."]
    hidden = call(jira, SEARCH, auth="noperm", jql=f"project = {key}")
    assert hidden.status_code == 400 and "does not exist for the field 'project'" in hidden.text
    assert call(jira, SEARCH, auth="noperm", jql='updated >= "2020/01/01"').json() == {"issues": [], "isLast": True}
    assert call(jira, "/rest/agile/1.0/board", auth="noperm").json()["values"] == []
    assert call(jira, "/rest/agile/1.0/board/1/sprint", auth="noperm").status_code == 404
    assert call(jira, f"/rest/api/3/issue/{world.items[0].key}", auth="noperm").status_code == 404


def test_faults_answer_as_jira_does(jira: SandboxServer, world: WorkWorld) -> None:
    faults = jira.faults
    faults.path_contains = "/search/jql"
    assert call(jira, "/rest/api/3/myself").status_code == 200  # other paths are spared
    faults.expired_token = 1
    expired = call(jira, SEARCH, jql=f"project = {world.projects[0].key}")
    assert (expired.status_code, expired.text) == (401, "Client must be authenticated to access this resource.")
    faults.too_many_requests = 1
    limited = call(jira, SEARCH, jql=f"project = {world.projects[0].key}")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(limited.headers)
    faults.server_errors = 1
    failed = call(jira, SEARCH, jql=f"project = {world.projects[0].key}")
    assert failed.status_code == 500 and failed.json()["errorMessages"] == ["Internal server error"]
    faults.slow_responses, faults.slow_seconds = 1, 0.3
    started = time.monotonic()
    assert call(jira, SEARCH, jql=f"project = {world.projects[0].key}").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert [r.fault for r in jira.requests[-4:]] == ["expired_token", "too_many_requests", "server_errors",
                                                      "slow_responses"]  # fmt: skip


def test_the_rate_limit_is_counted_per_token_and_minute(jira: SandboxServer) -> None:
    tenant = "jira_unit_quota"
    jira.tool_rate_limit = 3
    try:
        answers = [call(jira, "/rest/api/3/myself", tenant=tenant) for _ in range(4)]
    finally:
        jira.tool_rate_limit = 600
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    reset = datetime.strptime(answers[-1].headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(0) < reset - datetime.now(UTC) <= timedelta(seconds=61)
    assert call(jira, "/rest/api/3/myself").status_code == 200  # another token, its own window


def test_the_malformed_record_breaks_one_listed_issue(jira: SandboxServer, world: WorkWorld) -> None:
    target = world.malformed_target()
    jira.faults.malformed_work_item = True
    issues, _ = search_all(jira, f"project = {target.project_key}", fields="summary,status,created", maxResults=100)
    broken = [i for i in issues if "key" not in i]
    assert [i["id"] for i in broken] == [str(target.id)]
    assert broken[0]["fields"]["created"] == "last Tuesday" and "status" not in broken[0]["fields"]
    assert all("status" in i["fields"] for i in issues if i is not broken[0])
    ids, _ = search_all(jira, f"project = {target.project_key}", maxResults=100)
    assert {"id": str(target.id)} in ids  # an ids-only answer has nothing to break


def test_unknown_paths_and_methods(jira: SandboxServer) -> None:
    assert call(jira, "/rest/api/3/nothing").status_code == 404
    assert call(jira, "/rest/api/3/field", method="DELETE").status_code == 405
    assert call(jira, "/rest/api/3/changelog/bulkfetch").status_code == 405
