"""The sandbox's Azure Boards API over HTTP: auth, WIQL and its cap, hydration, paging, faults.

Each test uses its own tenant (``abs_*``) of the session sandbox; expected values come from the
tenant's planning world (ids, changes) with Azure's rules written out here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from connectors.sandbox import SandboxFaults, SandboxServer
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import WorkItem, WorkWorld


def ms(moment: Any) -> Any:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def revision_moments(item: WorkItem) -> list[Any]:
    created = ms(item.created_at)
    return [created, *sorted({max(ms(c.at), created) for c in item.changes})]


def iso(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def azure_text(moment: Any) -> str:
    """How Azure writes a timestamp: milliseconds without trailing zeros (``…26.23Z``)."""
    fraction = f"{moment.microsecond // 1000:03d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class Api:
    """Requests to one tenant's organisation with its PAT (Basic ``:<pat>``)."""

    def __init__(self, sandbox: SandboxServer, tenant: str, token: str | None = None) -> None:
        self.base = f"{sandbox.url}/azure/{tenant}-eng"
        self.auth = ("", token if token is not None else token_for("azure", tenant))

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.base + path, params={"api-version": "7.1", **params}, auth=self.auth, timeout=10)

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        return requests.post(
            self.base + path, params={"api-version": "7.1", **params}, json=body, auth=self.auth, timeout=10
        )

    def wiql(self, project: str, where: str = "", **params: Any) -> requests.Response:
        query = "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project" + where
        return self.post(f"/{project}/_apis/wit/wiql", {"query": query + " ORDER BY [System.Id]"}, **params)


@pytest.fixture
def faults(sandbox_faults: SandboxFaults) -> Iterator[SandboxFaults]:
    yield sandbox_faults


def test_pat_auth_and_the_organisation(sandbox: SandboxServer) -> None:
    tenant = "abs_auth"
    api = Api(sandbox, tenant)
    assert api.get("/_apis/projects").status_code == 200
    bearer = requests.get(
        f"{api.base}/_apis/projects", headers={"Authorization": f"Bearer {token_for('azure', tenant)}"}, timeout=10
    )
    assert bearer.status_code == 200
    anybody = requests.get(f"{api.base}/_apis/projects", auth=("someone", token_for("azure", tenant)), timeout=10)
    assert anybody.status_code == 200  # any user name goes with a PAT

    anonymous = requests.get(f"{api.base}/_apis/projects", timeout=10)
    assert anonymous.status_code == 203 and anonymous.headers["content-type"].startswith("text/html")
    wrong = Api(sandbox, tenant, token="ado_live_whatever").get("/_apis/projects")
    assert wrong.status_code == 401 and wrong.json()["message"].startswith("VS30063")
    assert set(wrong.json()) == {"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}
    other_org = requests.get(f"{sandbox.url}/azure/abs_other-eng/_apis/projects", auth=api.auth, timeout=10)
    assert other_org.status_code == 401
    unknown_org = requests.get(f"{sandbox.url}/azure/nowhere/_apis/projects", auth=api.auth, timeout=10)
    assert unknown_org.status_code == 404

    noperm = Api(sandbox, tenant, token=token_for("azure", tenant, noperm=True))
    project = sandbox.work_world(tenant).projects[0].key
    assert noperm.get("/_apis/projects").status_code == 200
    denied = noperm.wiql(project)
    assert denied.status_code == 401 and denied.json()["message"].startswith("TF400813: The user '")
    assert noperm.get("/_apis/wit/fields").status_code == 401


def test_wiql_returns_ids_only_with_day_or_millisecond_precision(sandbox: SandboxServer) -> None:
    tenant = "abs_wiql"
    world = sandbox.work_world(tenant)
    api = Api(sandbox, tenant)
    project = world.projects[0].key
    items = list(world.items_of(project))
    body = api.wiql(project).json()
    assert [w["id"] for w in body["workItems"]] == sorted(i.id for i in items)
    assert set(body) == {"queryType", "queryResultType", "asOf", "columns", "sortColumns", "workItems"}
    assert body["queryType"] == "flat" and body["columns"][0]["referenceName"] == "System.Id"

    changed = {i.id: revision_moments(i)[-1] for i in items}
    pivot = sorted(changed.values())[len(changed) // 2]
    where = f" AND [System.ChangedDate] >= '{iso(pivot)}'"
    precise = api.wiql(project, where, timePrecision="true").json()["workItems"]
    assert [w["id"] for w in precise] == sorted(i for i, at in changed.items() if at >= pivot)
    by_day = api.wiql(project, where).json()["workItems"]  # without timePrecision: the day only
    assert [w["id"] for w in by_day] == sorted(i for i, at in changed.items() if at.date() >= pivot.date())
    ranged = api.wiql(project, f" AND [System.Id] > {items[2].id} AND [System.Id] <= {items[9].id}").json()
    assert [w["id"] for w in ranged["workItems"]] == sorted(i.id for i in items)[3:10]

    bad = api.post(f"/{project}/_apis/wit/wiql", {"query": "SELECT [System.Id] FROM WorkItems WHERE [Custom.Nope] = 1"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("TF51005")
    garbled = api.post(f"/{project}/_apis/wit/wiql", {"query": "SELECT FROM"})
    assert garbled.status_code == 400 and garbled.json()["message"].startswith("TF51006")
    missing = api.wiql("NOPE")
    assert missing.status_code == 404 and missing.json()["message"].startswith("TF200016: The following project")


def test_wiql_enforces_the_result_cap(sandbox: SandboxServer) -> None:
    tenant = "abs_cap"
    world = sandbox.work_world(tenant)
    api = Api(sandbox, tenant)
    project = world.projects[0].key
    sandbox.azure_wiql_cap = 5  # type: ignore[attr-defined]
    try:
        over = api.wiql(project)
        limited = api.wiql(project, "", **{"$top": "5"})
        small = api.wiql(project, f" AND [System.Id] <= {sorted(i.id for i in world.items_of(project))[4]}")
    finally:
        del sandbox.azure_wiql_cap  # type: ignore[attr-defined]
    assert over.status_code == 400
    assert over.json()["message"].startswith("VS402337: The number of work items returned exceeds the size limit of 5")
    assert limited.status_code == 200 and len(limited.json()["workItems"]) == 5
    assert small.status_code == 200 and len(small.json()["workItems"]) == 5


def test_hydration_limits_omissions_and_as_of(sandbox: SandboxServer) -> None:
    tenant = "abs_batch"
    world = sandbox.work_world(tenant)
    api = Api(sandbox, tenant)
    project = world.projects[0].key
    batch = f"/{project}/_apis/wit/workitemsbatch"
    too_many = api.post(batch, {"ids": list(range(1, 202))})
    assert too_many.status_code == 400 and too_many.json()["message"].startswith("VS403474")
    item = next(i for i in world.items_of(project) if len(revision_moments(i)) >= 4)
    ghost = 999_999_999
    omitted = api.post(batch, {"ids": [item.id, ghost], "errorPolicy": "omit"}).json()
    assert omitted["value"][1] is None and omitted["value"][0]["id"] == item.id
    failed = api.post(batch, {"ids": [item.id, ghost]})
    assert failed.status_code == 404 and failed.json()["message"].startswith(
        f"TF401232: Work item {ghost} does not exist"
    )
    conflict = api.post(batch, {"ids": [item.id], "fields": ["System.State"], "$expand": "relations"})
    assert conflict.status_code == 400

    moments = revision_moments(item)
    before_last = moments[-1] - timedelta(milliseconds=1)
    old = api.post(batch, {"ids": [item.id], "asOf": iso(before_last), "fields": ["System.Rev", "System.ChangedDate"]})
    assert old.json()["value"][0]["rev"] == len(moments) - 1
    assert old.json()["value"][0]["fields"] == {
        "System.Rev": len(moments) - 1,
        "System.ChangedDate": azure_text(moments[-2]),
    }
    unborn = api.post(batch, {"ids": [item.id], "asOf": iso(moments[0] - timedelta(seconds=1)), "errorPolicy": "omit"})
    assert unborn.json()["value"] == [None]
    listed = api.get(f"/{project}/_apis/wit/workitems", ids=f"{item.id}", fields="System.Id,System.WorkItemType")
    kind = {"story": "User Story", "bug": "Bug", "task": "Task", "epic": "Epic"}[item.type]
    assert listed.json()["value"][0]["fields"] == {"System.Id": item.id, "System.WorkItemType": kind}


def test_revisions_feed_pages_with_continuation_tokens_until_the_last_batch(sandbox: SandboxServer) -> None:
    tenant = "abs_feed"
    world = sandbox.work_world(tenant)
    api = Api(sandbox, tenant)
    project = world.projects[0].key
    path = f"/{project}/_apis/wit/reporting/workitemrevisions"
    expected = sum(len(revision_moments(i)) for i in world.items_of(project))
    seen: list[tuple[int, int]] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"$maxPageSize": 50, "fields": "System.Id,System.Rev,System.ChangedDate,System.AssignedTo"}
        page = api.get(path, **params, **({"continuationToken": token} if token else {})).json()
        pages += 1
        seen += [(v["id"], v["rev"]) for v in page["values"]]
        assert page["nextLink"].endswith(f"continuationToken={page['continuationToken']}")
        token = page["continuationToken"]
        if page["isLastBatch"]:
            break
        assert len(page["values"]) == 50
    assert len(seen) == len(set(seen)) == expected and pages == -(-expected // 50)
    assigned = [v for v in api.get(path, fields="System.AssignedTo").json()["values"] if v["fields"]]
    assert all(v["fields"]["System.AssignedTo"].endswith(".example>") for v in assigned)  # "Name <email>" text

    change = sandbox.advance_work_items(tenant, 3)
    after = api.get(path, continuationToken=token, fields="System.Id").json()
    new = [(v["id"], v["rev"]) for v in after["values"]]
    items = [world.item(i) for i in (*change.changed_item_ids, *change.new_item_ids)]
    mine = [i for i in items if i is not None and i.project_key == project]
    assert after["isLastBatch"] and {i for i, _ in new} == {i.id for i in mine}
    assert api.get(path, continuationToken="garbage!").status_code == 400
    assert api.get(path, **{"$maxPageSize": 1001}).status_code == 400  # Azure's page maximum


def test_projects_members_iterations_states_fields_and_updates(sandbox: SandboxServer) -> None:
    tenant = "abs_lists"
    world: WorkWorld = sandbox.work_world(tenant)
    api = Api(sandbox, tenant)
    names: list[str] = []
    token = None
    while True:
        answer = api.get("/_apis/projects", **{"$top": 1, **({"continuationToken": token} if token else {})})
        names += [p["name"] for p in answer.json()["value"]]
        token = answer.headers.get("x-ms-continuationtoken")
        if not token:
            break
    assert sorted(names) == sorted(p.key for p in world.projects)

    project = world.projects[0]
    team = f"{project.key} Team"
    assert api.get(f"/_apis/projects/{project.key}").json()["defaultTeam"]["name"] == team
    members = [p.email for p in world.people if p.team == project.team]
    got: list[str] = []
    skip = 0
    while True:
        page = api.get(f"/_apis/projects/{project.key}/teams/{team}/members", **{"$top": 3, "$skip": skip}).json()[
            "value"
        ]
        got += [m["identity"]["uniqueName"] for m in page]
        if len(page) < 3:
            break
        skip += 3
    assert got == members

    iterations = api.get(f"/{project.key}/{team}/_apis/work/teamsettings/iterations").json()
    sprints = [s for s in world.sprints if s.project_key == project.key]
    assert iterations["count"] == len(sprints) == len(iterations["value"])
    assert {i["attributes"]["timeFrame"] for i in iterations["value"]} == {"past", "current", "future"}
    current = api.get(f"/{project.key}/{team}/_apis/work/teamsettings/iterations", **{"$timeframe": "current"}).json()
    assert [i["name"] for i in current["value"]] == [s.name for s in sprints if s.state(world.now) == "active"]
    assert api.get(f"/{project.key}/Nobody/_apis/work/teamsettings/iterations").status_code == 404

    states = api.get(f"/{project.key}/_apis/wit/workitemtypes/Task/states").json()["value"]
    assert [(s["name"], s["category"]) for s in states] == [
        ("New", "Proposed"), ("Active", "InProgress"), ("Closed", "Completed"), ("Removed", "Removed"),
    ]  # fmt: skip
    assert api.get(f"/{project.key}/_apis/wit/workitemtypes/Feature/states").status_code == 404

    fields = {f["referenceName"]: f for f in api.get("/_apis/wit/fields").json()["value"]}
    status = fields["Custom.UnitTestingStatus"]
    assert status["isPicklist"] and status["name"] == "Unit Testing Status"
    picklist = api.get(f"/_apis/work/processes/lists/{status['picklistId']}").json()
    assert picklist["items"] == ["Not Started", "In Progress", "Done", "Exception Approved"]

    item = max(world.items_of(project.key), key=lambda i: len(revision_moments(i)))
    updates = api.get(f"/{project.key}/_apis/wit/workItems/{item.id}/updates").json()["value"]
    assert [u["rev"] for u in updates] == list(range(1, len(revision_moments(item)) + 1))
    assert updates[0]["fields"]["System.State"] == {"newValue": "New"}
    assert updates[-1]["revisedDate"] == "9999-01-01T00:00:00Z"
    second = api.get(f"/{project.key}/_apis/wit/workItems/{item.id}/updates", **{"$top": 2, "$skip": 1}).json()
    assert [u["rev"] for u in second["value"]] == [2, 3]

    unknown = api.get("/_apis/nothing/here")
    assert unknown.status_code == 404 and "does not implement IController" in unknown.text


def test_faults_answer_as_azure_does(sandbox: SandboxServer, faults: SandboxFaults) -> None:
    tenant = "abs_faults"
    world = sandbox.work_world(tenant)
    api = Api(sandbox, tenant)
    project = world.projects[0].key
    faults.too_many_requests = 1
    limited = api.wiql(project)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Remaining"] == "0" and limited.json()["typeKey"] == "RequestBlockedException"
    faults.server_errors = 1
    assert api.wiql(project).status_code == 500
    faults.expired_token = 1
    expired = api.wiql(project)
    assert expired.status_code == 401 and expired.json()["message"] == (
        "Access Denied: The Personal Access Token used has expired."
    )
    faults.slow_responses, faults.slow_seconds = 1, 0.3
    started = time.monotonic()
    assert api.wiql(project).status_code == 200 and time.monotonic() - started >= 0.3

    faults.malformed_work_item = True
    target = world.malformed_target()
    others = [i.id for i in world.items_of(target.project_key) if i.id != target.id][:3]
    answer = api.post(f"/{target.project_key}/_apis/wit/workitemsbatch", {"ids": [target.id, *others]}).json()
    broken, *good = answer["value"]
    assert (
        broken["fields"]["System.ChangedDate"] == "sometime last week" and "System.WorkItemType" not in broken["fields"]
    )
    assert all("T" in g["fields"]["System.ChangedDate"] and g["fields"]["System.WorkItemType"] for g in good)


def test_the_rate_limit_warns_then_answers_429(sandbox: SandboxServer) -> None:
    tenant = "abs_rate"
    api = Api(sandbox, tenant)
    limit = sandbox.tool_rate_limit
    sandbox.tool_rate_limit = 10
    try:
        answers = [api.get("/_apis/projects") for _ in range(12)]
    finally:
        sandbox.tool_rate_limit = limit
    assert [a.status_code for a in answers] == [200] * 10 + [429] * 2
    assert "X-RateLimit-Remaining" not in answers[0].headers  # far from the limit: no headers
    near = answers[8]
    assert near.headers["X-RateLimit-Limit"] == "10" and near.headers["X-RateLimit-Remaining"] == "1"
    assert float(near.headers["X-RateLimit-Delay"]) > 0 and near.headers["X-RateLimit-Resource"]
    blocked = answers[-1]
    assert int(blocked.headers["Retry-After"]) >= 1 and blocked.json()["message"].startswith("TF400733")
