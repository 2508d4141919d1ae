"""Parsing ClickUp API v2 answers: tasks (custom field values of every type, sprints from
``locations``, links), time in status, lists, fields, members, field candidates.

There is no recorded ClickUp traffic in ``shared/fixtures``; the fixtures below are small
hand-written answers in the shapes of ClickUp's API reference (task object, custom field
object, time in status), and :func:`test_recorded_clickup_answers_parse` reads recordings
when some are added there (skipped, with the reason, until then).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.clickup.catalog import Catalog, ListInfo, config_list
from connectors.clickup.helpers import (
    MalformedItem,
    TaskContext,
    canonical_value,
    custom_field_value,
    parse_field,
    parse_list,
    parse_member,
    parse_millis,
    parse_status_history,
    parse_task,
)
from pulse.fieldmap import CANONICAL_NAMES, propose
from tests.shared_fixtures import recorded

LEVEL = {
    "id": "f-ac",
    "name": "Acceptance Criteria Quality",
    "type": "drop_down",
    "type_config": {
        "options": [
            {"id": "o-inc", "name": "Incomplete", "orderindex": 0},
            {"id": "o-tst", "name": "Testable", "orderindex": 1},
            {"id": "o-fin", "name": "Final", "orderindex": 2},
        ]
    },
}
FIELDS: list[dict[str, Any]] = [
    {"id": "f-sp", "name": "Story Points", "type": "number", "type_config": {}, "value": "5"},
    {**LEVEL, "value": 2},
    {"id": "f-utt", "name": "Unit Test Task", "type": "checkbox", "type_config": {}, "value": "true"},
    {
        "id": "f-uts",
        "name": "Unit Testing Status",
        "type": "drop_down",
        "type_config": {"options": [{"id": "o-ea", "name": "Exception Approved", "orderindex": 3}]},
        "value": "o-ea",  # some answers carry the option's id instead of its orderindex
    },
    {"id": "f-cov", "name": "Coverage %", "type": "number", "type_config": {}, "value": 87.5},
    {
        "id": "f-pr",
        "name": "PR Links",
        "type": "text",
        "type_config": {},
        "value": "https://x/pull/1\nhttps://x/pull/2",
    },
    {"id": "f-ci", "name": "CI Evidence", "type": "url", "type_config": {}},  # empty: no "value"
    {"id": "f-rev", "name": "Reviewer DMT Sign-off", "type": "checkbox", "type_config": {}, "value": False},
    {"id": "f-exc", "name": "DMT Exception", "type": "checkbox", "type_config": {}, "value": "true"},
    {"id": "f-why", "name": "DMT Exception Reason", "type": "text", "type_config": {}, "value": "Legacy code"},
    {
        "id": "f-who",
        "name": "DMT Exception Approver",
        "type": "users",
        "type_config": {},
        "value": [{"id": 183, "username": "Lead", "email": "lead@acme.example"}],
    },
    {"id": "f-exp", "name": "DMT Exception Expires", "type": "date", "type_config": {}, "value": "1767268800000"},
    {"id": "f-goal", "name": "Sprint Goal", "type": "short_text", "type_config": {}, "value": "Ship it"},
]
MAPPINGS = {
    "story_points": "f-sp",
    "sprint": "folder:457",
    "dmt_ac_quality": "f-ac",
    "dmt_unit_test_task": "f-utt",
    "dmt_unit_test_status": "f-uts",
    "dmt_coverage_pct": "f-cov",
    "dmt_pr_links": "f-pr",
    "dmt_ci_evidence": "f-ci",
    "dmt_reviewer_signoff": "f-rev",
    "dmt_exception": "f-exc",
    "dmt_exception_reason": "f-why",
    "dmt_exception_approver": "f-who",
    "dmt_exception_expires": "f-exp",
}
TASK: dict[str, Any] = {
    "id": "9hz",
    "custom_id": None,
    "custom_item_id": 1300,
    "name": "Checkout shows delivery estimates",
    "status": {"status": "in review", "color": "#f8ae00", "type": "custom", "orderindex": 3},
    "date_created": "1567780450202",
    "date_updated": "1567780450202",
    "date_closed": None,
    "date_done": None,
    "archived": False,
    "creator": {"id": 183, "username": "John Doe", "color": "#827718", "email": "john@acme.example"},
    "assignees": [
        {"id": 184, "username": "Ann", "email": "ann@acme.example"},
        {"id": 185, "username": "Bo", "email": "bo@acme.example"},
    ],
    "tags": [{"name": "post-release", "tag_fg": "#fff", "tag_bg": "#e50000"}],
    "parent": "9hv",
    "top_level_parent": "9hv",
    "points": 5,
    "custom_fields": FIELDS,
    "linked_tasks": [{"task_id": "9hz", "link_id": "9hw", "date_created": "1587571108988", "userid": "183"}],
    "locations": [{"id": "1001", "name": "Sprint 11 (3/4 - 3/17)"}, {"id": "1002", "name": "Sprint 12 (3/18 - 3/31)"}],
    "url": "https://app.clickup.com/t/9hz",
    "list": {"id": "124", "name": "Backlog", "access": True},
    "folder": {"id": "456", "name": "hidden", "hidden": True, "access": True},
    "space": {"id": "789"},
}
CONTEXT = TaskContext(
    field_mappings=MAPPINGS,
    sprint_lists={"1001": datetime(2024, 3, 4, tzinfo=UTC), "1002": datetime(2024, 3, 18, tzinfo=UTC)},
    task_types={1300: "Story", 1301: "Bug"},
    space_names={"789": "Platform team"},
)


def test_task_row_with_every_kind_of_custom_field() -> None:
    row = parse_task(TASK, CONTEXT)
    assert {k: v for k, v in row.items() if k != "payload"} == {
        "id": "9hz",
        "custom_id": None,
        "name": "Checkout shows delivery estimates",
        "status": "in review",
        "status_type": "custom",
        "custom_item_id": 1300,
        "task_type": "Story",
        "date_created": datetime(2019, 9, 6, 14, 34, 10, 202000, tzinfo=UTC),
        "date_updated": datetime(2019, 9, 6, 14, 34, 10, 202000, tzinfo=UTC),
        "date_closed": None,
        "date_done": None,
        "archived": False,
        "creator_id": 183,
        "creator_email": "john@acme.example",
        "assignee_email": "ann@acme.example",
        "assignee_emails": "ann@acme.example\nbo@acme.example",
        "parent_id": "9hv",
        "top_level_parent_id": "9hv",
        "list_id": "124",
        "folder_id": None,  # a folderless list's "hidden" folder is no folder
        "space_id": "789",
        "space_name": "Platform team",
        "location_list_ids": ["1001", "1002"],
        "linked_task_ids": ["9hw"],
        "tags": ["post-release"],
        "points": 5.0,
        "url": "https://app.clickup.com/t/9hz",
        "story_points": 5.0,
        "sprint": "1002",  # of the two sprint lists it is in, the one that starts last
        "dmt_ac_quality": "Final",  # drop-down orderindex 2
        "dmt_unit_test_task": True,
        "dmt_unit_test_status": "Exception Approved",  # by option id
        "dmt_coverage_pct": 87.5,
        "dmt_pr_links": "https://x/pull/1\nhttps://x/pull/2",
        "dmt_ci_evidence": None,
        "dmt_reviewer_signoff": False,
        "dmt_exception": True,
        "dmt_exception_reason": "Legacy code",
        "dmt_exception_approver": "lead@acme.example",
        "dmt_exception_expires": date(2026, 1, 1),
    }
    assert row["payload"] is TASK


def test_defaults_without_mappings_types_or_sprints() -> None:
    task = {**TASK, "custom_item_id": 0, "locations": [], "assignees": [], "linked_tasks": []}
    row = parse_task(task, TaskContext())
    assert row["task_type"] == "Task" and row["sprint"] is None and row["assignee_email"] is None
    assert all(row[name] is None for name in MAPPINGS if name != "sprint")
    assert parse_task({**task, "custom_item_id": 1}, TaskContext())["task_type"] == "Milestone"
    assert parse_task({**task, "custom_item_id": 4242}, TaskContext())["task_type"] == "Custom item 4242"
    # A sprint list as the task's home list counts too.
    home_in_sprint = {**task, "list": {"id": "1001"}}
    assert parse_task(home_in_sprint, CONTEXT)["sprint"] == "1001"
    # The sprint as a custom field (a team's own drop-down) is read as its label.
    field_sprint = TaskContext(field_mappings={"sprint": "f-goal"})
    assert parse_task(task, field_sprint)["sprint"] == "Ship it"


def test_linked_tasks_point_to_the_other_task() -> None:
    task = {**TASK, "linked_tasks": [{"task_id": "9hw", "link_id": "9hz"}, {"task_id": "9hz", "link_id": "9hx"}]}
    assert parse_task(task, CONTEXT)["linked_task_ids"] == ["9hw", "9hx"]


def test_malformed_task_names_every_problem() -> None:
    broken = copy.deepcopy(TASK)
    broken["status"] = "complete"
    broken["date_updated"] = "yesterday, after lunch"
    del broken["space"]
    with pytest.raises(MalformedItem) as caught:
        parse_task(broken, CONTEXT)
    assert str(caught.value) == (
        "missing required field 'space.id'; "
        "missing required field 'status.status'; "
        "'date_updated' is not a Unix time in milliseconds: 'yesterday, after lunch'"
    )
    with pytest.raises(MalformedItem, match="item is a list, not a JSON object"):
        parse_task([], CONTEXT)


def test_a_custom_value_that_fits_no_option_is_a_problem() -> None:
    broken = copy.deepcopy(TASK)
    broken["custom_fields"][1]["value"] = 7
    with pytest.raises(MalformedItem) as caught:
        parse_task(broken, CONTEXT)
    assert str(caught.value) == (
        "custom field 'Acceptance Criteria Quality' (f-ac) for dmt_ac_quality: value 7 is none of the field's options"
    )


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ({"type": "number", "value": "13"}, 13.0),
        ({"type": "currency", "value": 2.5}, 2.5),
        ({"type": "checkbox", "value": "false"}, False),
        ({"type": "checkbox", "value": True}, True),
        ({"type": "date", "value": "0"}, datetime(1970, 1, 1, tzinfo=UTC)),
        ({"type": "users", "value": [{"email": "a@x"}, {"email": "b@x"}]}, ["a@x", "b@x"]),
        ({"type": "labels", "value": ["o-tst", "o-fin"], "type_config": LEVEL["type_config"]}, ["Testable", "Final"]),
        ({"type": "drop_down", "value": 0, "type_config": LEVEL["type_config"]}, "Incomplete"),
        ({"type": "url", "value": "https://ci/1"}, "https://ci/1"),
        ({"type": "text"}, None),
        ({"type": "text", "value": ""}, None),
    ],
)
def test_custom_field_values_by_type(custom: dict[str, Any], expected: Any) -> None:
    assert custom_field_value(custom) == expected


def test_canonical_conversions() -> None:
    assert canonical_value("boolean", "Yes") is True and canonical_value("boolean", "No") is False
    assert canonical_value("number", "3") == 3.0
    assert canonical_value("date", datetime(2026, 1, 1, 23, 30, tzinfo=UTC)) == date(2026, 1, 1)
    assert canonical_value("date", "2026-02-03") == date(2026, 2, 3)
    assert canonical_value("email", ["a@x", "b@x"]) == "a@x" and canonical_value("email", []) is None
    assert canonical_value("text", ["a", "b"]) == "a\nb" and canonical_value("text", 2.0) == "2"
    with pytest.raises(ValueError, match="no yes/no value"):
        canonical_value("boolean", "Maybe")


def test_millis() -> None:
    assert parse_millis("1567780450202") == datetime(2019, 9, 6, 14, 34, 10, 202000, tzinfo=UTC)
    assert parse_millis(1567780450202) == parse_millis("1567780450202")
    assert parse_millis(None) is None
    bad: Any
    for bad in ("2019-09-06T14:34:10Z", True, "soon", {}):
        with pytest.raises(ValueError):
            parse_millis(bad)


HISTORY = {
    "current_status": {"status": "in progress", "color": "#5f55ee", "total_time": {"by_minute": 30, "since": "3000"}},
    "status_history": [
        {"status": "to do", "color": "#87909e", "type": "open", "total_time": {"by_minute": 5, "since": "1000"},
         "orderindex": 0},
        {"status": "in progress", "color": "#5f55ee", "type": "custom",
         "total_time": {"by_minute": 40, "since": "1500"}, "orderindex": 1},
        {"status": "blocked", "color": "#e50000", "type": "custom", "total_time": {"by_minute": 20, "since": "2000"},
         "orderindex": 2},
    ],
}  # fmt: skip


def test_status_history_rows_one_per_status() -> None:
    rows = parse_status_history("9hz", HISTORY)
    assert [
        (r["status"], r["status_type"], r["orderindex"], r["since"], r["total_minutes"], r["is_current"],
         r["current_since"])
        for r in rows
    ] == [
        ("to do", "open", 0, parse_millis("1000"), 5, False, None),
        ("in progress", "custom", 1, parse_millis("1500"), 40, True, parse_millis("3000")),
        ("blocked", "custom", 2, parse_millis("2000"), 20, False, None),
    ]  # fmt: skip
    assert {r["task_id"] for r in rows} == {"9hz"}
    # A current status missing from the history still gets its row.
    only_current = {"current_status": HISTORY["current_status"], "status_history": []}
    assert [(r["status"], r["since"], r["is_current"]) for r in parse_status_history("9hz", only_current)] == [
        ("in progress", parse_millis("3000"), True)
    ]
    with pytest.raises(MalformedItem, match="missing required field 'status_history'"):
        parse_status_history("9hz", {"current_status": HISTORY["current_status"]})


def test_lists_fields_members() -> None:
    sprint = {
        "id": "1002", "name": "Sprint 12 (3/18 - 3/31)", "orderindex": 1, "task_count": 12,
        "start_date": "1710720000000", "due_date": "1711929600000", "archived": False,
        "folder": {"id": "457", "name": "Sprints", "hidden": False},
    }  # fmt: skip
    row = parse_list(sprint, space={"id": "789", "name": "Platform team"}, is_sprint=True)
    assert (row["id"], row["folder_id"], row["folder_name"], row["is_sprint"], row["start_date"], row["due_date"]) == (
        "1002", "457", "Sprints", True, datetime(2024, 3, 18, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC),
    )  # fmt: skip
    backlog = {"id": 124, "name": "Backlog", "folder": {"id": "456", "name": "hidden", "hidden": True}}
    assert parse_list(backlog, space={"id": "789"}, is_sprint=False)["folder_id"] is None
    field = parse_field(LEVEL, list_ids=["2", "1"], canonical_name="dmt_ac_quality")
    assert field["options"] == [
        {"id": "o-inc", "name": "Incomplete", "orderindex": 0},
        {"id": "o-tst", "name": "Testable", "orderindex": 1},
        {"id": "o-fin", "name": "Final", "orderindex": 2},
    ]
    assert (field["list_ids"], field["canonical_name"]) == (["1", "2"], "dmt_ac_quality")
    member = parse_member({"user": {"id": 183, "username": "John", "email": "j@x", "initials": "J", "role": 3}})
    assert {k: member[k] for k in ("id", "username", "email", "role")} == {
        "id": 183, "username": "John", "email": "j@x", "role": 3,
    }  # fmt: skip
    with pytest.raises(MalformedItem, match="missing required field 'id'"):
        parse_member({"user": {"username": "nobody"}})


def test_field_candidates_map_every_canonical_name() -> None:
    fields = {f["id"]: {k: v for k, v in f.items() if k != "value"} for f in FIELDS}
    fields["f-eff"] = {"id": "f-eff", "name": "Effort (hours)", "type": "number", "type_config": {}}
    catalog = Catalog(
        team={"id": "1", "members": []},
        task_types={},
        spaces=[{"id": "789", "name": "Platform team"}],
        folders=[{"id": "457", "name": "Sprints", "space_id": "789"}, {"id": "458", "name": "Sprints"}],
        lists=[ListInfo("1002", "Sprint 12", {"id": "789"}, "457", "Sprints", None, None, {})],
        fields=fields,
    )
    candidates = {c.id: c for c in catalog.candidates()}
    assert (candidates["f-ac"].type, candidates["f-ac"].schema_key) == ("option", "drop_down")
    assert candidates["f-ac"].options == ("Incomplete", "Testable", "Final")
    assert [candidates[i].type for i in ("f-utt", "f-who", "f-exp", "f-pr", "f-ci", "f-goal")] == [
        "boolean", "user", "date", "text", "url", "string",
    ]  # fmt: skip
    sprint = candidates["folder:457,458"]
    assert sprint.type == "sprint" and sprint.schema_key == "clickup:sprint_folder"
    proposal = propose(catalog.candidates())
    assert proposal.missing == []
    assert {name: m.field_id for name, m in proposal.mappings.items()} == MAPPINGS | {"sprint": "folder:457,458"}
    assert set(proposal.mappings) == set(CANONICAL_NAMES)


def test_config_lists() -> None:
    assert config_list("1, 2,,3") == ["1", "2", "3"]
    assert config_list(["1", 2]) == ["1", "2"]
    assert config_list(None) == []


def test_recorded_clickup_answers_parse() -> None:
    """Every task and time-in-status answer recorded under shared/fixtures/clickup parses."""
    folder = recorded("clickup")
    parsed = 0
    for path in sorted(folder.rglob("*.json")):
        body = json.loads(path.read_text())
        for task in body.get("tasks", []) if isinstance(body, dict) else []:
            row = parse_task(task, TaskContext())
            assert row["id"] == str(task["id"]) and row["date_updated"] is not None
            parsed += 1
        if isinstance(body, dict) and "status_history" in body:
            assert parse_status_history("recorded", body)
            parsed += 1
    assert parsed > 0, f"no ClickUp tasks or time-in-status answers under {folder}"
