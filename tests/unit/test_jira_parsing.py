"""The Jira connector's parsers against every relevant recorded Jira answer in shared/fixtures.

``jira/devlake-raw`` holds single real items (one per CSV row, the request in ``url``); rows
mix several connections and boards, so each test groups them by ``params``. ``jira/go-jira``
holds whole page envelopes, whose ``total`` is not to be trusted. Expected values are read by
hand from the recordings.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.github.helpers import MalformedItem
from connectors.jira import build_jql, jql_time, project_keys
from connectors.jira.parsing import (
    adf_text,
    current_sprint,
    embedded_changelog,
    field_candidates,
    field_type,
    parse_board,
    parse_field,
    parse_history,
    parse_issue,
    parse_sprint,
    parse_status,
    parse_user,
    value_number,
    value_text,
)
from tests.shared_fixtures import recorded

MAPPINGS = {"story_points": "customfield_10024", "sprint": "customfield_10020"}
CHANGE_FIELDS = {"customfield_10020": "sprint", "customfield_10024": "story_points"}
SITE = "https://merico.atlassian.net"

csv.field_size_limit(10**9)


def devlake(name: str) -> dict[str, list[dict[str, Any]]]:
    """The recorded items of one devlake table, by connection and board (``params``)."""
    text = (recorded("jira", "devlake-raw") / name).read_text(encoding="utf-8-sig").lstrip()
    by_params: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(text)):
        params = json.loads(row["params"])
        by_params[f"{params['ConnectionId']}/{params['BoardId']}"].append(json.loads(row["data"]))
    return dict(by_params)


def go_jira(name: str) -> Any:
    return json.loads((recorded("jira", "go-jira") / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- issues ---------------------------------------------------------------------------------


def test_board_issues_of_each_connection_parse_with_their_mapped_fields() -> None:
    issues = devlake("_raw_jira_api_issues.csv")
    assert {key: len(items) for key, items in issues.items()} == {"2/8": 30, "1/93": 3}
    rows = {row["key"]: row for items in issues.values() for row in (parse_issue(i, MAPPINGS, SITE) for i in items)}
    assert len(rows) == 33
    assert all(row["key"].startswith("EE-") for row in map(lambda i: parse_issue(i, MAPPINGS, SITE), issues["2/8"]))
    ee1, ee2, ee25, k5_2, k5_4 = rows["EE-1"], rows["EE-2"], rows["EE-25"], rows["K5-2"], rows["K5-4"]
    # Non-English names are kept as Jira sends them; the category key is what counts.
    assert (ee1["id"], ee1["issue_type"], ee1["status"], ee1["status_category"]) == ("10063", "故事", "已完成", "new")
    assert (ee2["status"], ee2["status_category"]) == ("已完成", "done")
    # Story points live in customfield_10024 on this site (one item says -1).
    assert (ee1["story_points"], ee2["story_points"], rows["EE-3"]["story_points"]) == (-1.0, 2.0, None)
    # The Sprint field holds sprint objects; the current one is the last closed one, or the active one.
    assert (ee1["sprint"], rows["EE-17"]["sprint"], rows["EE-19"]["sprint"], k5_2["sprint"]) == ("7", "17", None, "175")
    # Sub-tasks and stories point to their parent; the epic is a level above.
    assert (ee25["parent_id"], ee25["parent_key"], ee25["hierarchy_level"]) == ("10063", "EE-1", -1)
    assert (k5_2["parent_key"], k5_4["issue_type"], k5_4["hierarchy_level"], k5_4["parent_id"]) == (
        "K5-1",
        "Epic",
        1,
        None,
    )
    # Timestamps with +0800 offsets become UTC.
    assert ee1["created_at"] == datetime(2020, 6, 12, 0, 13, 13, 360000, tzinfo=UTC)
    assert ee1["updated_at"] == utc("2021-03-28T16:06:08.713+08:00")
    assert ee1["resolved_at"] == utc("2020-06-19T14:31:18.495+08:00")
    assert (ee1["labels"], ee1["url"]) == (["frontEnd", "Saas"], f"{SITE}/browse/EE-1")
    # Cloud hides the assignee's email; the account id is there.
    assert (ee1["assignee_account_id"], ee1["assignee_email"]) == ("5ecfbd0c730ec90c1999cadf", None)
    assert (ee1["reporter_account_id"], ee1["project_key"], ee1["project_name"]) == (
        "5e9711ba34f7b90c0fbc37d3", "EE", "Enterprise Edition",
    )  # fmt: skip
    # The changelog is not part of the payload (it goes to issue_changes).
    assert "changelog" not in ee1["payload"] and ee1["payload"]["key"] == "EE-1"
    assert all(row[name] is None for row in rows.values() for name in ("dmt_ac_quality", "dmt_exception"))


def test_server_issues_with_links_parse_and_no_blocker_is_taken_for_a_cause() -> None:
    (board,) = devlake("_raw_jira_api_issue_relationships.csv").values()
    rows = [parse_issue(item, MAPPINGS, "http://3.81.151.94:8080") for item in board]
    assert len(rows) == 22
    links = Counter(link["type"]["name"] for item in board for link in item["fields"]["issuelinks"])
    assert links == {"Blocks": 6, "Cloners": 4, "Duplicate": 4, "Relates": 2}
    assert all(row["caused_by_id"] is None for row in rows)
    # Jira Server: users by name and key, no account id; the email is given.
    assert {(row["assignee_account_id"], row["assignee_email"]) for row in rows} == {(None, "hao.ke@merico.dev")}
    assert rows[0]["created_at"] == utc("2023-05-29T03:57:06.000+00:00")


def test_the_same_issue_recorded_twice_parses_the_same() -> None:
    (due,) = devlake("_raw_jira_api_issues_for_due_date.csv").values()
    board = devlake("_raw_jira_api_issues.csv")["2/8"]
    row = parse_issue(due[0], MAPPINGS, SITE)
    original = next(parse_issue(i, MAPPINGS, SITE) for i in board if i["key"] == row["key"])
    assert {k: v for k, v in row.items() if k != "payload"} == {k: v for k, v in original.items() if k != "payload"}
    (epics,) = devlake("_raw_jira_external_epics.csv").values()
    assert [parse_issue(i, MAPPINGS, SITE)["key"] for i in epics] == ["K5-2", "K5-3", "K5-4"]


def test_a_page_claiming_ten_issues_holds_one() -> None:
    for name in ("issues_in_sprint.json", "issues_in_sprint_with_changelog.json"):
        page = go_jira(name)
        assert page["total"] == 10
        rows = [parse_issue(item, {"story_points": "customfield_10105"}, "https://example.atlassian.net")
                for item in page["issues"]]  # fmt: skip
        assert [(r["key"], r["story_points"], r["status_category"]) for r in rows] == [("AR-86", 13.0, "new")]
        assert rows[0]["created_at"] == utc("2015-12-02T07:39:15.000-08:00")
        assert rows[0]["assignee_email"] == "mister.morris@uservoice.com"


def test_broken_issues_name_every_problem() -> None:
    item = json.loads(json.dumps(devlake("_raw_jira_api_issues.csv")["2/8"][0]))
    del item["key"]
    item["fields"]["created"] = "yesterday"
    item["fields"]["status"]["statusCategory"]["key"] = "blocked"
    with pytest.raises(MalformedItem) as caught:
        parse_issue(item, MAPPINGS, SITE)
    assert str(caught.value) == (
        "missing required field 'key'; 'fields.status.statusCategory.key' is 'blocked', not one of "
        "['done', 'indeterminate', 'new', 'undefined']; 'fields.created' is not a Jira timestamp: 'yesterday'"
    )
    with pytest.raises(MalformedItem, match="missing required field 'fields'"):
        parse_issue({"id": "1", "key": "A-1"}, MAPPINGS, SITE)


# -- changelogs -------------------------------------------------------------------------------------


def test_embedded_changelogs_are_complete_only_when_their_total_says_so() -> None:
    for item in devlake("_raw_jira_api_issues.csv")["2/8"]:
        histories, complete = embedded_changelog(item["changelog"])
        assert complete and len(histories) == item["changelog"]["total"]
    # go-jira's changelog has no total: it cannot be trusted to be complete.
    page = go_jira("issues_in_sprint_with_changelog.json")
    histories, complete = embedded_changelog(page["issues"][0]["changelog"])
    assert (len(histories), complete) == (2, False)
    assert embedded_changelog(None) == ([], False)
    assert embedded_changelog({"startAt": 0, "maxResults": 20, "total": 31, "histories": [{}] * 20}) == (
        [{}] * 20,
        False,
    )


def test_changelog_histories_become_one_row_per_item() -> None:
    logs = devlake("_raw_jira_api_issue_changelogs.csv")
    assert {key: len(items) for key, items in logs.items()} == {"2/8": 276, "1/8": 1, "2/9": 1, "3/7": 1}
    rows = [
        row
        for items in logs.values()
        for history in items
        for row in parse_history(history, "13383", None, CHANGE_FIELDS, {"Sprint": "customfield_10020"})
    ]
    assert len(rows) == sum(len(history["items"]) for items in logs.values() for history in items) == 284
    by_field = Counter((row["field"], row["canonical_field"]) for row in rows)
    assert by_field[("Sprint", "sprint")] == 12 and by_field[("status", "status")] == 10
    assert by_field[("RemoteIssueLink", None)] == 243 and by_field[("Rank", None)] == 1
    # Sprint values are comma-separated id lists; an empty one is "".
    sprints = [row for row in rows if row["canonical_field"] == "sprint"]
    first = next(row for row in sprints if row["from_value"] == "")
    assert (first["to_value"], first["to_string"]) == ("34", "EE Sprint 24")
    assert any(row["from_value"] == "38, 40" and row["to_value"] == "38, 40, 41" for row in sprints)
    status = next(row for row in rows if row["canonical_field"] == "status")
    assert (status["from_value"], status["from_string"], status["to_value"], status["to_string"]) == (
        "1", "Open", "10074", "开发中",
    )  # fmt: skip
    assert status["changed_at"] == utc("2021-01-25T21:49:52.514+08:00")
    # Cloud hides authors' emails (8 of 279 show one) and one history has a blank account id.
    assert sum(1 for row in rows if row["author_email"]) < 20
    assert rows[0]["author_account_id"] is None and rows[0]["history_id"] == "57278"


def test_a_history_recorded_twice_has_the_same_key() -> None:
    (items,) = devlake("issue_changelogs_raw/_raw_jira_api_issue_changelogs.csv").values()
    rows = [row for h in items for row in parse_history(h, "13383", "EE-1", {}, {})]
    keys = [(row["history_id"], row["item_index"]) for row in rows]
    assert len(keys) == 4 and len(set(keys)) == 3  # 57280 twice: the merge keeps one


def test_go_jira_histories_without_id_are_malformed() -> None:
    page = go_jira("issues_in_sprint_with_changelog.json")
    first, second = page["issues"][0]["changelog"]["histories"]
    (row,) = parse_history(first, "12338", "AR-86", {}, {})
    assert (row["field"], row["author_email"], row["canonical_field"]) == (
        "summary",
        "mister.morris@uservoice.com",
        None,
    )
    with pytest.raises(MalformedItem, match="missing required field 'id'"):
        parse_history(second, "12338", "AR-86", {}, {})


# -- agile and metadata ---------------------------------------------------------------------------------


def test_sprints_parse_from_both_recordings() -> None:
    (board8,) = devlake("_raw_jira_api_sprints.csv").values()
    rows = [parse_sprint(item, {"id": 8, "project_key": "EE"}) for item in board8]
    assert len(rows) == 30 and {row["state"] for row in rows} == {"closed"}
    seven = next(row for row in rows if row["id"] == 7)
    assert (seven["name"], seven["start_at"], seven["completed_at"], seven["origin_board_id"]) == (
        "EE Sprint 7", utc("2020-06-12T00:38:51.882+00:00"), utc("2020-06-22T05:59:58.980+00:00"), 8,
    )  # fmt: skip
    page = go_jira("sprints.json")
    assert page["isLast"] is True
    rows = [parse_sprint(item, {"id": 734, "project_key": None}) for item in page["values"]]
    assert [(r["id"], r["state"]) for r in rows] == [
        (740, "closed"), (776, "closed"), (807, "closed"), (832, "active"), (845, "future"), (846, "future"),
    ]  # fmt: skip
    assert rows[0]["end_at"] == utc("2016-04-27T08:29:00.000-07:00")
    assert (rows[3]["completed_at"], rows[4]["start_at"], rows[5]["goal"]) == (None, None, "My Goal")
    (active,) = [parse_sprint(i, {"id": 734}) for i in go_jira("sprints_filtered.json")["values"]]
    assert (active["id"], active["state"]) == (832, "active")


def test_boards_parse_with_and_without_a_location() -> None:
    page = go_jira("all_boards.json")
    rows = [parse_board(item) for item in page["values"]]
    assert len(rows) == page["total"] == 6
    assert Counter(row["type"] for row in rows) == {"kanban": 3, "scrum": 3}
    test_mobile = next(row for row in rows if row["id"] == 1)
    assert (test_mobile["project_id"], test_mobile["project_key"], test_mobile["project_name"]) == (
        "10000", "AP", "aproject",
    )  # fmt: skip
    assert sum(1 for row in rows if row["project_key"] is None) == 5


def test_fields_are_typed_by_their_schema() -> None:
    (fields,) = devlake("_raw_jira_api_issue_fields.csv").values()
    rows = [parse_field(item) for item in fields]
    assert [(r["id"], r["is_custom"], r["field_type"], r["schema_custom"]) for r in rows] == [
        ("customfield_10315", True, "user", "com.atlassian.jira.plugin.system.customfieldtypes:userpicker"),
        ("customfield_10400", True, "other", "com.xiplink.jira.git.jira_git_plugin:gitbranches"),
    ]
    candidates = field_candidates(fields)
    assert [(c.id, c.name, c.type, c.schema_key) for c in candidates] == [
        ("customfield_10315", "cu用户单选", "user", "com.atlassian.jira.plugin.system.customfieldtypes:userpicker"),
        ("customfield_10400", "gitBranch", "other", "com.xiplink.jira.git.jira_git_plugin:gitbranches"),
    ]
    system = go_jira("all_fields.json")
    assert [parse_field(item)["field_type"] for item in system] == ["string", "string"]
    assert field_candidates(system) == []  # system fields are never mapped


def test_statuses_and_users_parse() -> None:
    (statuses,) = devlake("_raw_jira_api_status.csv").values()
    rows = [parse_status(item) for item in statuses]
    assert len(rows) == 53
    assert Counter(row["category_key"] for row in rows) == {"new": 21, "indeterminate": 21, "done": 11}
    progress = next(row for row in rows if row["id"] == "3")
    assert (progress["name"], progress["untranslated_name"], progress["category_name"]) == (
        "In Progress", "In Progress", "In Progress",
    )  # fmt: skip
    (users,) = devlake("_raw_jira_api_users.csv").values()
    rows = [parse_user(item) for item in users]
    assert len(rows) == 30 and len({row["account_id"] for row in rows}) == 30
    assert Counter(row["account_type"] for row in rows) == {"atlassian": 28, "app": 2}
    assert sum(1 for row in rows if row["email"]) == 2
    bot = next(row for row in rows if row["display_name"] == "Automation for Jira")
    assert (bot["account_id"], bot["time_zone"], bot["active"]) == (
        "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "Asia/Shanghai", True,
    )  # fmt: skip


# -- values of mapped fields -------------------------------------------------------------------------------


def test_rich_text_and_drop_downs_become_plain_values() -> None:
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "https://github.com/a/b/pull/1",
                                              "marks": [{"type": "link", "attrs": {"href": "x"}}]}]},
            {"type": "paragraph", "content": []},
            {"type": "bulletList", "content": [{"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "see "},
                                                  {"type": "inlineCard", "attrs": {"url": "https://ci/1"}}]}]}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"},
                                              {"type": "mention", "attrs": {"id": "1", "text": "@Ada"}}]},
        ],
    }  # fmt: skip
    assert adf_text(doc) == "https://github.com/a/b/pull/1\nsee https://ci/1\na\n@Ada"
    assert value_text(doc) == adf_text(doc)
    assert value_text({"self": "x", "value": "Final", "id": "10202"}) == "Final"
    assert value_text([{"value": "Yes", "id": "1"}]) == "Yes"
    assert value_text({"accountId": "abc", "emailAddress": "a@b.example"}) == "a@b.example"
    assert value_text({"accountId": "abc", "displayName": "Ada"}) == "abc"
    assert value_text({"value": "Parent", "child": {"value": "Child"}}) == "Parent / Child"
    assert (value_text(84.5), value_text(3.0), value_text("  "), value_text(True)) == ("84.5", "3", None, "true")
    assert (value_number("84.5%"), value_number("n/a"), value_number(True), value_number(5)) == (84.5, None, None, 5.0)


def test_the_current_sprint_is_active_else_next_else_last_closed() -> None:
    closed = {"id": 1, "state": "closed", "completeDate": "2026-10-01T00:00:00.000Z"}
    later_closed = {"id": 2, "state": "closed", "completeDate": "2026-10-15T00:00:00.000Z"}
    active = {"id": 3, "state": "active", "startDate": "2026-10-15T00:00:00.000Z"}
    future = {"id": 4, "state": "future", "startDate": "2026-11-01T00:00:00.000Z"}
    assert current_sprint([closed, later_closed, active, future]) == "3"
    assert current_sprint([later_closed, closed, future]) == "4"
    assert current_sprint([later_closed, closed]) == "2"
    assert current_sprint([]) is None and current_sprint(None) is None
    legacy = "com.atlassian.greenhopper.service.sprint.Sprint@1a[id=7,rapidViewId=8,state=ACTIVE,name=S7,goal=]"
    assert current_sprint([legacy]) == "7"


def test_field_types_follow_the_schema() -> None:
    cf = "com.atlassian.jira.plugin.system.customfieldtypes:"
    assert field_type({"type": "array", "items": "json", "custom": "com.pyxis.greenhopper.jira:gh-sprint"}) == "sprint"
    assert field_type({"type": "string", "custom": cf + "textarea"}) == "text"
    assert field_type({"type": "string", "custom": cf + "url"}) == "url"
    assert field_type({"type": "string", "custom": cf + "textfield"}) == "string"
    assert field_type({"type": "array", "items": "option", "custom": cf + "multicheckboxes"}) == "option"
    assert field_type({"type": "option-with-child"}) == "option"
    assert field_type({"type": "date"}) == "date" and field_type(None) == "other"


# -- JQL -------------------------------------------------------------------------------------------------


def test_jql_dates_are_written_in_the_accounts_zone_and_only_widen_the_window() -> None:
    york = ZoneInfo("America/New_York")
    moment = datetime(2026, 11, 20, 15, 16, 30, tzinfo=UTC)
    assert jql_time(moment, york, upper=False) == "2026/11/20 10:16"
    assert jql_time(moment, york, upper=True) == "2026/11/20 10:17"
    assert jql_time(moment.replace(second=0), york, upper=True) == "2026/11/20 10:16"
    # 01:30 happens twice when DST ends (2026-11-01): widen by the hour, whichever Jira reads.
    ambiguous = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert jql_time(ambiguous, york, upper=False) == "2026/11/01 00:30"
    assert jql_time(ambiguous, york, upper=True) == "2026/11/01 01:30"  # 01:30 EST, an hour later
    # No known zone: UTC, widened by the largest offset.
    assert jql_time(moment, None, upper=False) == "2026/11/20 01:16"
    assert jql_time(moment, None, upper=True) == "2026/11/21 05:17"


def test_the_query_is_always_bounded_and_ordered_by_creation() -> None:
    york = ZoneInfo("America/New_York")
    assert build_jql([], None, None, york) == 'updated >= "1970/01/01 00:00" ORDER BY created ASC, key ASC'
    since, until = datetime(2026, 11, 20, 15, 0, tzinfo=UTC), datetime(2026, 11, 21, 15, 0, 1, tzinfo=UTC)
    assert build_jql(["PLAT", "OPS"], since, until, york) == (
        'project in ("PLAT", "OPS") AND updated >= "2026/11/20 10:00" AND updated <= "2026/11/21 10:01" '
        "ORDER BY created ASC, key ASC"
    )
    assert project_keys({"projects": " plat, ops ,"}) == ["PLAT", "OPS"]
    assert project_keys({"projects": ["a"]}) == ["A"] and project_keys({}) == []


def test_recordings_are_where_the_tests_expect_them() -> None:
    assert isinstance(recorded("jira"), Path)
