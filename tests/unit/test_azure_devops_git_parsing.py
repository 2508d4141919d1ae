"""The Azure DevOps Git connector's parsers against real recorded responses (shared/fixtures),
and its paging against a server that does not advance.

Every pull request, reviewer and repository body in the az devops CLI recordings, and the
pull request and commit DevLake recorded, parse into the rows the raw tables hold. Lists are
read from their ``value``; the ``count`` beside it is never trusted.
"""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from connectors.azure_devops_git.helpers import (
    AzureDevOpsGitApiError,
    AzureDevOpsGitClient,
    MalformedItem,
    change_hash,
    description_cut,
    page_values,
    parse_commit,
    parse_pull_request,
    parse_repository,
    parse_reviewer,
    parse_work_item_ref,
    review_activity,
)
from tests.shared_fixtures import recorded

ORG_URL = "https://dev.azure.com/v-anvashist0376"
PR_RECORDING = "test_pull_request_createUpdateVoteListAbandonReactivateCompleteReviewers.json"
USER = "22157d54-1821-6536-a446-928b06348385"


def cli(name: str) -> list[dict[str, Any]]:
    path = recorded("azure_devops", "az-devops-cli-recordings") / name
    interactions: list[dict[str, Any]] = json.loads(path.read_text())["interactions"]
    return interactions


def devlake(name: str) -> list[dict[str, Any]]:
    csv.field_size_limit(10**8)
    path: Path = recorded("azure_devops", "devlake-raw") / name
    with path.open(newline="") as handle:
        return [json.loads(row["data"]) for row in csv.DictReader(handle)]


def pull_request_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Every pull request in the recordings: single answers and list items, with where it came from."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name in (PR_RECORDING, "test_pull_request_policies_workitems.json"):
        for index, interaction in enumerate(cli(name)):
            body = interaction["response"].get("body")
            if not isinstance(body, dict):
                continue
            if "pullRequestId" in body:
                out.append((f"{name}#{index}", body))
            for item in page_values(body):
                if isinstance(item, dict) and "pullRequestId" in item:
                    out.append((f"{name}#{index}", item))
    return out


def test_every_recorded_pull_request_parses() -> None:
    bodies = pull_request_bodies()
    assert len(bodies) == 19  # 16 single answers, 1 list item, 2 items of the other recording's list
    for where, body in bodies:
        row = parse_pull_request(body, ORG_URL)
        assert row["id"] == body["pullRequestId"], where
        assert row["status"] in ("active", "abandoned", "completed"), where
        assert row["created_at"].tzinfo is not None, where
        assert row["repository_id"] == body["repository"]["id"], where
        assert row["payload"] is body
        assert len(row["change_hash"]) == 20


def test_pull_request_values_from_the_recording() -> None:
    interactions = cli(PR_RECORDING)
    row = parse_pull_request(interactions[9]["response"]["body"], ORG_URL)
    assert row == {
        **row,
        "id": 57,
        "status": "active",
        "title": "Fixing a bug in cli engine",
        "description": "This should be the pr description",
        "author_email": "v-sbestala@microsoft.com",
        "author_id": USER,
        "author_name": "Soujanya Bestala (MINDTREE LIMITED)",
        # seven fractional digits (100 ns ticks): the seventh is below a microsecond
        "created_at": datetime(2025, 1, 10, 12, 23, 52, 603884, tzinfo=UTC),
        "closed_at": None,
        "source_ref": "testbranch",
        "target_ref": "main",
        "is_draft": False,
        "last_merge_source_commit": "994b4ee248ede8b1d046da3dfd729af05410429c",
        "last_merge_commit": "94bf409fcddb23cfbff62216ce0599ac9db2aa9e",
        "repository_name": "XVFjTPTE",
        "project_name": "PullRequestLiveTest",
        "artifact_id": "vstfs:///Git/PullRequestId/b810b0b0-a954-403b-9795-f0c9d0c9cfe9%2f"
        "75055255-180d-40f6-819c-5dd61686a788%2f57",
        "web_url": f"{ORG_URL}/PullRequestLiveTest/_git/XVFjTPTE/pullrequest/57",
    }
    abandoned = parse_pull_request(interactions[11]["response"]["body"], ORG_URL)
    assert abandoned["status"] == "abandoned"
    assert abandoned["closed_at"] == datetime(2025, 1, 10, 12, 23, 55, 603901, tzinfo=UTC)
    assert abandoned["merge_status"] is None


def test_change_hash_follows_votes_and_status_but_not_merge_noise() -> None:
    bodies = {i: x["response"]["body"] for i, x in enumerate(cli(PR_RECORDING))}
    no_reviewer, reviewer_no_vote, approved, completing = bodies[25], bodies[19], bodies[28], bodies[29]
    assert [r["vote"] for r in reviewer_no_vote["reviewers"]] == [0]
    assert change_hash(no_reviewer) != change_hash(reviewer_no_vote)  # a reviewer was added
    assert change_hash(reviewer_no_vote) != change_hash(approved)  # the vote went 0 → 10
    # Completing only queues a merge (mergeStatus "queued", no lastMergeCommit yet): nothing to re-read.
    assert completing["mergeStatus"] == "queued" and "lastMergeCommit" not in completing
    assert change_hash(approved) == change_hash(completing)
    assert change_hash(bodies[10]) != change_hash(bodies[11])  # abandoned
    assert change_hash(bodies[11]) != change_hash(bodies[13])  # reactivated


def test_recorded_reviewers_parse_with_their_votes() -> None:
    interactions = cli(PR_RECORDING)
    pull_request = {"id": 57, "repository_id": "75055255-180d-40f6-819c-5dd61686a788"}
    listed = page_values(interactions[18]["response"]["body"])
    (row,) = [parse_reviewer(item, pull_request, {}) for item in listed]
    assert row == {
        **row,
        "pull_request_id": 57,
        "reviewer_id": USER,
        "unique_name": "v-sbestala@microsoft.com",
        "vote": 0,
        "is_required": False,
        "has_declined": False,
        "voted_at": None,
        "comment_count": 0,
    }
    voted = parse_reviewer(interactions[27]["response"]["body"], pull_request, {})
    assert voted["vote"] == 10
    embedded = [parse_reviewer(r, pull_request, {}) for r in interactions[28]["response"]["body"]["reviewers"]]
    assert [(r["reviewer_id"], r["vote"]) for r in embedded] == [(USER, 10)]
    assert page_values(interactions[22]["response"]["body"]) == []  # after the reviewer was removed


def test_recorded_repositories_parse() -> None:
    interactions = cli(PR_RECORDING)
    rows = [parse_repository(item) for item in page_values(interactions[31]["response"]["body"])]
    assert [(r["name"], r["default_branch"], r["project_name"]) for r in rows] == [
        ("navBuNsF", "main", "PullRequestLiveTest"),
        ("PullRequestLiveTest", "main", "PullRequestLiveTest"),
        ("yDwHnLDi", "main", "PullRequestLiveTest"),
    ]
    created = parse_repository(interactions[0]["response"]["body"])
    assert created["id"] == "75055255-180d-40f6-819c-5dd61686a788" and created["default_branch"] is None


def test_devlake_pull_request_and_commit_parse() -> None:
    (item,) = devlake("_raw_azuredevops_go_api_pull_requests.csv")
    row = parse_pull_request(item, "https://dev.azure.com/johndoe")
    assert (row["id"], row["status"], row["author_email"], row["source_ref"]) == (
        1,
        "active",
        "john.doe@merico.dev",
        "ticket-2",
    )
    assert row["created_at"] == datetime(2023, 2, 7, 4, 41, 26, 642431, tzinfo=UTC)
    assert row["web_url"] == "https://dev.azure.com/johndoe/test-project/_git/test-repo2/pullrequest/1"
    (commit,) = devlake("_raw_azuredevops_go_api_pull_request_commits.csv")
    parsed = parse_commit(commit, {"id": 1, "repository_id": row["repository_id"]})
    assert parsed == {
        **parsed,
        "commit_id": "85ede91717145a1e6e2bdab4cab689ac8f2fa3a2",
        "author_email": "john.doe@merico.dev",
        "authored_at": datetime(2023, 2, 7, 4, 49, 28, tzinfo=UTC),
        "committed_at": datetime(2023, 2, 7, 4, 49, 28, tzinfo=UTC),
        "comment": "Fixedmain.java",
    }


def test_lists_are_read_from_value_never_from_count() -> None:
    body = cli(PR_RECORDING)[31]["response"]["body"]
    assert body["count"] == 3
    lying = {**body, "count": 250}
    assert len(page_values(lying)) == 3
    assert page_values({"count": 5}) == []  # no value list: nothing, whatever count says
    with pytest.raises(ValueError):
        page_values({"count": 1, "value": "oops"})


def test_malformed_pull_request_names_every_problem() -> None:
    body = json.loads(json.dumps(cli(PR_RECORDING)[9]["response"]["body"]))
    del body["pullRequestId"]
    body["creationDate"] = "yesterday, around lunch"
    body["status"] = "merged"
    with pytest.raises(MalformedItem) as caught:
        parse_pull_request(body, ORG_URL)
    reason = str(caught.value)
    assert "missing required field 'pullRequestId'" in reason
    assert "'creationDate' is not an ISO 8601 timestamp" in reason
    assert "'status' is 'merged'" in reason


def test_work_item_refs_have_string_ids() -> None:
    pull_request = {"id": 57, "repository_id": "r"}
    row = parse_work_item_ref({"id": "1234", "url": f"{ORG_URL}/_apis/wit/workItems/1234"}, pull_request)
    assert (row["pull_request_id"], row["work_item_id"]) == (57, 1234)
    with pytest.raises(MalformedItem, match="not a work item id"):
        parse_work_item_ref({"id": "AB#12"}, pull_request)


def prop(value: str) -> dict[str, str]:
    return {"$type": "System.String", "$value": value}


def thread(at: str, properties: dict[str, Any], identities: Any = None, **extra: Any) -> dict[str, Any]:
    return {"id": 1, "publishedDate": at, "properties": properties, "identities": identities, **extra}


def test_vote_times_resets_and_comments_come_from_threads() -> None:
    ada, bo = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
    ref = {"1": {"id": ada, "uniqueName": "ada@example.com"}}
    threads = [
        thread("2026-11-02T10:00:00.1234567Z", {"CodeReviewThreadType": prop("ReviewersUpdate")}),
        thread(
            "2026-11-02T11:00:00Z",
            {"CodeReviewThreadType": prop("VoteUpdate"), "CodeReviewVoteResult": prop("-5"),
             "CodeReviewVotedByIdentity": prop("1")},
            ref,
        ),
        thread(
            "2026-11-02T12:00:00Z",
            {"CodeReviewThreadType": prop("VoteUpdate"),
             "CodeReviewVoteResult": {"$type": "System.Int32", "$value": 10},  # a number, not text
             "CodeReviewVotedByIdentity": prop(bo)},  # an identity id, not an index
        ),
        thread(
            "2026-11-02T13:00:00Z",
            {"CodeReviewThreadType": prop("ResetMultipleVotes"),
             "CodeReviewResetMultipleVotesExampleVoterIdentities": prop("1"),
             "CodeReviewResetMultipleVotesNumVoters": prop("1")},
            ref,
        ),
        thread("2026-11-02T14:00:00Z", {}, comments=[
            {"author": {"id": bo}, "commentType": "text", "publishedDate": "2026-11-02T14:00:00Z"},
            {"author": {"id": bo}, "commentType": "text", "publishedDate": "2026-11-02T14:05:00Z", "isDeleted": True},
            {"author": {"id": ada}, "commentType": "system", "publishedDate": "2026-11-02T14:06:00Z"},
        ]),
        thread("2026-11-02T15:00:00Z", {}, isDeleted=True, comments=[{"author": {"id": ada}, "commentType": "text"}]),
        thread("not a date", {}),
    ]  # fmt: skip
    activity, bad = review_activity(threads)
    assert activity[ada].last_vote == -5
    assert activity[ada].voted_at == datetime(2026, 11, 2, 11, tzinfo=UTC)
    assert activity[ada].vote_reset_at == datetime(2026, 11, 2, 13, tzinfo=UTC)
    assert activity[ada].comment_count == 0
    assert (activity[bo].last_vote, activity[bo].vote_reset_at) == (10, None)
    assert activity[bo].comment_count == 1
    assert activity[bo].last_commented_at == datetime(2026, 11, 2, 14, tzinfo=UTC)
    assert [reason for _, reason in bad] == ["'publishedDate' is not an ISO 8601 timestamp: 'not a date'"]


def test_descriptions_of_400_characters_or_more_may_be_cut() -> None:
    assert description_cut({"description": "x" * 400})
    assert not description_cut({"description": "x" * 399})
    assert not description_cut({"description": None})


class _Stubborn(BaseHTTPRequestHandler):
    """A server that ignores ``$skip`` and ``continuationToken``: the same full page every time."""

    def do_GET(self) -> None:
        body = json.dumps({"count": 2, "value": [{"pullRequestId": 1}, {"pullRequestId": 2}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-ms-continuationtoken", "same")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_paging_that_does_not_advance_stops_with_an_error() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Stubborn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = AzureDevOpsGitClient(
            f"http://127.0.0.1:{server.server_address[1]}/org", "pat", source_name="stuck", project="P"
        )
        pages = client.pages_by_skip("/P/_apis/git/repositories/r/pullrequests", {}, top=2)
        with pytest.raises(AzureDevOpsGitApiError, match=r"does not advance \(\$skip=2 answered the same page"):
            list(pages)
        with pytest.raises(AzureDevOpsGitApiError, match="continuation token came back unchanged"):
            list(client.pages_by_token("/P/_apis/git/repositories/r/pullRequests/1/commits", {}))
    finally:
        server.shutdown()
        server.server_close()


def test_a_reviewers_first_vote_and_comment_are_kept_beside_the_latest() -> None:
    """Time to first review needs the first act, not the verdict that stands."""
    ada = "aaaaaaaa-0000-0000-0000-000000000001"
    vote = "CodeReviewVoteResult"
    threads = [
        thread("2026-11-02T09:00:00Z", {"CodeReviewThreadType": prop("VoteUpdate"), vote: prop("-10"),
                                         "CodeReviewVotedByIdentity": prop(ada)}),
        thread("2026-11-02T10:00:00Z", {}, comments=[
            {"author": {"id": ada}, "commentType": "text", "publishedDate": "2026-11-02T10:00:00Z"},
        ]),
        thread("2026-11-03T09:00:00Z", {"CodeReviewThreadType": prop("VoteUpdate"), vote: prop("10"),
                                         "CodeReviewVotedByIdentity": prop(ada)}),
        thread("2026-11-03T10:00:00Z", {}, comments=[
            {"author": {"id": ada}, "commentType": "text", "publishedDate": "2026-11-03T10:00:00Z"},
        ]),
    ]  # fmt: skip
    activity, bad = review_activity(threads)
    seen = activity[ada]
    assert (seen.last_vote, seen.voted_at, seen.first_voted_at) == (
        10,
        datetime(2026, 11, 3, 9, tzinfo=UTC),
        datetime(2026, 11, 2, 9, tzinfo=UTC),
    )
    assert (seen.first_commented_at, seen.last_commented_at) == (
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        datetime(2026, 11, 3, 10, tzinfo=UTC),
    )
    assert bad == []
    row = parse_reviewer({"id": ada, "vote": 10}, {"id": 7, "repository_id": "r"}, activity)
    assert (row["first_voted_at"], row["first_commented_at"]) == (seen.first_voted_at, seen.first_commented_at)
