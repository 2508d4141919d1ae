"""The Azure Boards connector's parsers against real recorded Azure DevOps responses.

The recordings (``shared/fixtures/azure_devops/az-devops-cli-recordings``, from the Azure DevOps
CLI's integration tests) hold WIQL answers, hydrated work items with and without relations,
team iterations (some without dates), a project and error bodies. Reported counts are never
trusted: the assertions count the items themselves.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.azure_boards import field_candidate
from connectors.azure_boards.helpers import (
    AzureBoardsApiError,
    AzureBoardsAuthError,
    AzureBoardsClient,
    AzureBoardsQueryTooLarge,
    MalformedItem,
    canonical_value,
    identity_email,
    parse_azure_time,
    parse_iteration,
    parse_project,
    parse_work_item,
    relation_links,
    wiql_ids,
    wiql_query,
)
from tests.shared_fixtures import recorded

MAPPINGS = {"story_points": "Microsoft.VSTS.Scheduling.StoryPoints", "sprint": "System.IterationPath"}


def exchanges(name: str) -> list[dict[str, Any]]:
    path: Path = recorded("azure_devops", "az-devops-cli-recordings") / name
    interactions: list[dict[str, Any]] = json.loads(path.read_text())["interactions"]
    return interactions


def answers(name: str, method: str, contains: str) -> list[Any]:
    return [
        x["response"]["body"]
        for x in exchanges(name)
        if x["request"]["method"] == method
        and contains in x["request"]["uri"]
        and x["response"]["status"]["code"] < 300
    ]


def test_wiql_answers_give_ids_and_as_of_and_are_never_trusted_for_counts() -> None:
    recorded_answers = answers("test_queryShow.json", "POST", "/_apis/wit/wiql")
    recorded_answers += answers("test_boards_releations_create_remove.json", "POST", "/_apis/wit/wiql")
    assert len(recorded_answers) == 3
    for answer in recorded_answers:
        sent: list[str] = []

        def run(query: str, reply: dict[str, Any] = answer, log: list[str] = sent) -> dict[str, Any]:
            log.append(query)
            return reply

        ids, as_of = wiql_ids(run, None, None, now=datetime(2026, 11, 22, tzinfo=UTC))
        assert ids == sorted(item["id"] for item in answer["workItems"])
        assert as_of == parse_azure_time(answer["asOf"])
        assert sent == ["SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project ORDER BY [System.Id]"]
    ids, _ = wiql_ids(lambda q: recorded_answers[1], None, None, now=datetime(2026, 11, 22, tzinfo=UTC))
    assert ids == [974, 975, 976]
    assert parse_azure_time(recorded_answers[0]["asOf"]) == datetime(
        2025, 1, 10, 12, 13, 7, 260000, tzinfo=UTC
    )  # '…07.26Z'


def test_hydrated_work_items_with_relations_parse_to_rows() -> None:
    bodies = [
        b
        for b in answers("test_boards_releations_create_remove.json", "GET", "/_apis/wit/workItems/")
        if isinstance(b, dict) and "fields" in b
    ]
    assert len(bodies) >= 20
    parents: dict[int, set[int | None]] = {}
    for body in bodies:
        row = parse_work_item(body, MAPPINGS)
        assert row["id"] == body["id"] and row["project"] == "WIRel000001" and row["work_item_type"] == "Task"
        assert row["state"] == "To Do" and row["reason"] == "Added to backlog"
        assert row["created_by_email"] == "test@example.com" and row["assigned_to_email"] is None
        assert row["iteration_path"] == row["sprint"] == "WIRel000001"  # the project root: no sprint
        assert row["story_points"] is None and row["caused_by_id"] is None and row["pull_requests"] == []
        assert row["payload"] is body
        parents.setdefault(row["id"], set()).add(row["parent_id"])
    assert parents[973] == {None}  # only Hierarchy-Forward (child) links
    assert parents[974] == {973, None}  # linked to 973, then unlinked
    first = parse_work_item(next(b for b in bodies if b["id"] == 973), MAPPINGS)
    assert first["changed_at"] == first["created_at"] == datetime(2026, 3, 31, 18, 36, 26, 230000, tzinfo=UTC)


def test_hydration_with_a_fields_subset_is_quarantined_with_every_reason() -> None:
    hydrated = answers("test_queryShow.json", "GET", "/_apis/wit/workItems?ids=")
    items = [item for answer in hydrated for item in answer["value"]]
    assert [item["id"] for item in items] == [40, 41, 41]
    for item in items:
        with pytest.raises(MalformedItem) as caught:
            parse_work_item(item, MAPPINGS)
        reason = str(caught.value)
        assert "missing required field 'fields.System.TeamProject'" in reason
        assert "missing required field 'fields.System.ChangedDate'" in reason
        assert "missing required field 'fields.System.CreatedDate'" in reason
        assert "System.WorkItemType" not in reason and "System.State" not in reason


def test_team_iterations_parse_with_and_without_dates() -> None:
    pages = answers("test_boards_iterations.json", "GET", "/_apis/work/teamsettings/iterations")
    assert [len(page["value"]) for page in pages] == [0, 2, 1, 0]
    rows = [
        parse_iteration(item, "IterationProj_000001", "teamName1_000002") for page in pages for item in page["value"]
    ]
    assert [(r["name"], r["time_frame"], r["start_date"], r["finish_date"]) for r in rows] == [
        ("Child_Itr_000004", "current", None, None),
        ("Child_Itr_000005", "future", None, None),
        ("Child_Itr_000005", "current", None, None),
    ]
    assert rows[0]["path"] == "IterationProj_000001\\teamName1_000002_Root_Itr_000003\\Child_Itr_000004"
    assert rows[0]["id"] == "de824369-0007-47c5-90c3-730f387941d8"
    dated = {
        **pages[1]["value"][0],
        "attributes": {"startDate": "2019-06-17T00:00:00Z", "finishDate": "2019-06-28T00:00:00Z"},
    }
    row = parse_iteration(dated, "p", "t")
    assert (row["start_date"], row["finish_date"]) == (
        datetime(2019, 6, 17, tzinfo=UTC),
        datetime(2019, 6, 28, tzinfo=UTC),
    )
    with pytest.raises(MalformedItem, match="missing required field 'path'"):
        parse_iteration({"id": "x", "name": "y"}, "p", "t")


def test_project_parses_with_its_default_team() -> None:
    (project,) = answers("test_boards_iterations.json", "GET", "/_apis/projects/IterationProj_000001")
    row = parse_project(project)
    assert (row["name"], row["default_team_name"], row["process"], row["state"]) == (
        "IterationProj_000001",
        "IterationProj_000001 Team",
        "Basic",
        "wellFormed",
    )
    assert row["last_update_time"] == datetime(2026, 3, 31, 18, 17, 18, 320000, tzinfo=UTC)


def _response(exchange: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = exchange["response"]["status"]["code"]
    response.headers.update(exchange["response"]["headers"])
    body = exchange["response"]["body"]
    response._content = (json.dumps(body) if not isinstance(body, str) else body).encode()
    response.url = exchange["request"]["uri"]
    return response


def test_recorded_errors_become_errors_a_person_can_act_on() -> None:
    client = AzureBoardsClient("https://dev.azure.com/v-anvashist0376", "pat-secret", source_name="boards")
    missing_project, no_controller = exchanges("test_workItemCreateShowUpdateDelete.json")
    with pytest.raises(AzureBoardsApiError) as caught:
        client._check(_response(missing_project), "https://dev.azure.com/v-anvashist0376/x")
    assert caught.value.status == 404 and caught.value.type_key == "ProjectDoesNotExistWithNameException"
    assert str(caught.value).startswith("project not found in org 'v-anvashist0376' (TF200016: The following project")
    assert "check the 'project' config of source 'boards'" in str(caught.value)
    with pytest.raises(AzureBoardsApiError) as caught:
        client._check(_response(no_controller), "u")
    assert "was not found or does not implement IController" in str(caught.value)
    bad = next(x for x in exchanges("test_boards_iterations.json") if x["response"]["status"]["code"] == 400)
    with pytest.raises(AzureBoardsApiError, match="TF400497: The backlog iteration path"):
        client._check(_response(bad), "u")
    too_many = {
        **bad,
        "response": {
            **bad["response"],
            "body": {
                **bad["response"]["body"],
                "message": "VS402337: The number of work items returned exceeds the size limit of 20000.",
            },
        },
    }
    with pytest.raises(AzureBoardsQueryTooLarge):
        client._check(_response(too_many), "u")
    for message in (
        "VS30063: You are not authorized to access https://dev.azure.com.",
        "Access Denied: The Personal Access Token used has expired.",
    ):
        denied = {**bad, "response": {**bad["response"], "status": {"code": 401}, "body": {"message": message}}}
        with pytest.raises(AzureBoardsAuthError) as auth:
            client._check(_response(denied), "u")
        assert "pat-secret" not in str(auth.value)
    assert "has expired" in str(auth.value)


def test_field_values_are_read_into_canonical_columns() -> None:
    identity = {"displayName": "Ada", "uniqueName": "Ada@Example.com", "id": "1"}
    assert canonical_value("text", identity) == "ada@example.com"
    assert canonical_value("text", "Exception Approved") == "Exception Approved"
    assert canonical_value("number", 3) == 3.0 and canonical_value("number", "87.5%") == 87.5
    assert canonical_value("number", True) is None and canonical_value("number", "n/a") is None
    assert canonical_value("boolean", "Yes") is True and canonical_value("boolean", "No") is False
    assert canonical_value("boolean", "maybe") is None
    assert canonical_value("date", "2026-12-01T00:00:00Z") == date(2026, 12, 1)
    assert identity_email("Jamal Hartnett <Fabrikam@hotmail.com>") == "fabrikam@hotmail.com"
    assert identity_email("not a person") is None
    assert parse_azure_time("2025-01-07T10:23:01.5604878Z") == datetime(2025, 1, 7, 10, 23, 1, 560487, tzinfo=UTC)


def test_relations_give_parent_cause_and_pull_requests() -> None:
    item = {
        "relations": [
            {
                "rel": "System.LinkTypes.Hierarchy-Reverse",
                "url": "https://x/_apis/wit/workItems/12",
                "attributes": {"name": "Parent"},
            },
            {"rel": "System.LinkTypes.Hierarchy-Forward", "url": "https://x/_apis/wit/workItems/99"},
            {
                "rel": "System.LinkTypes.Related",
                "url": "https://x/_apis/wit/workItems/7",
                "attributes": {"comment": "Caused by"},
            },
            {"rel": "System.LinkTypes.Related", "url": "https://x/_apis/wit/workItems/8", "attributes": {}},
            {
                "rel": "ArtifactLink",
                "url": "vstfs:///Git/PullRequestId/p-guid%2Fr-guid%2F42",
                "attributes": {"name": "Pull Request"},
            },
            {
                "rel": "ArtifactLink",
                "url": "vstfs:///Git/Commit/p%2Fr%2Fabc",
                "attributes": {"name": "Fixed in Commit"},
            },
        ]
    }
    assert relation_links(item) == (12, 7, [{"project_id": "p-guid", "repository_id": "r-guid", "pull_request_id": 42}])
    custom = {"relations": [{"rel": "Custom.CausedBy-Reverse", "url": "https://x/_apis/wit/workItems/5"}]}
    assert relation_links(custom) == (None, 5, [])


def test_wiql_text_and_field_candidates() -> None:
    since = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert wiql_query(since, None, 10, 20) == (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
        "[System.ChangedDate] >= '2026-11-01T10:00:00.123Z' AND [System.Id] > 10 AND [System.Id] <= 20 "
        "ORDER BY [System.Id]"
    )
    points = field_candidate(
        {"referenceName": "Microsoft.VSTS.Scheduling.StoryPoints", "name": "Story Points", "type": "double"}
    )
    assert points is not None and (points.type, points.schema_key) == (
        "number",
        "Microsoft.VSTS.Scheduling.StoryPoints",
    )
    who = field_candidate(
        {"referenceName": "System.AssignedTo", "name": "Assigned To", "type": "string", "isIdentity": True}
    )
    assert who is not None and who.type == "user"
    pick = field_candidate({"referenceName": "Custom.X", "name": "X", "type": "string", "isPicklist": True}, ("a", "b"))
    assert pick is not None and (pick.type, pick.options) == ("option", ("a", "b"))
    path = field_candidate({"referenceName": "System.IterationPath", "name": "Iteration Path", "type": "treePath"})
    assert path is not None and path.type == "sprint"
    assert field_candidate({"name": "no reference"}) is None
