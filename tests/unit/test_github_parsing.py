"""Parsing recorded GitHub items into raw rows, and the retry rules, without network or database."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.github import COLUMNS, QUARANTINE_TABLE
from connectors.github.helpers import (
    MalformedItem,
    RetryPolicy,
    is_rate_limited,
    item_key,
    parse_check_run,
    parse_commit,
    parse_pull_request,
    parse_repository,
    parse_review,
    parse_timestamp,
    retry_decision,
    safe_url,
)
from tests.shared_fixtures import recorded

POLICY = RetryPolicy()


def devlake_all(csv_name: str) -> list[dict[str, Any]]:
    csv.field_size_limit(10**8)
    with (recorded("github", "devlake-raw") / csv_name).open(newline="") as handle:
        return [json.loads(row["data"]) for row in csv.DictReader(handle)]


def devlake(csv_name: str) -> dict[str, Any]:
    return devlake_all(csv_name)[0]


def replay(name: str) -> list[dict[str, Any]]:
    return json.loads((recorded("github", "pygithub-replay") / name).read_text())["interactions"]  # type: ignore[no-any-return]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- rows -----------------------------------------------------------------------------------


def test_recorded_pull_request_becomes_the_contract_row() -> None:
    item = devlake("_raw_github_api_pull_requests.csv")
    row = parse_pull_request(item, "panjf2000/ants")
    assert set(row) == set(COLUMNS["pull_requests"])
    assert {key: value for key, value in row.items() if key not in ("payload", "title", "body")} == {
        "id": 203756736,
        "node_id": "MDExOlB1bGxSZXF1ZXN0MjAzNzU2NzM2",
        "repository_full_name": "panjf2000/ants",
        "number": 4,
        "state": "closed",
        "is_draft": False,
        "author_login": "barryz",
        "author_id": 16658738,
        "head_ref": "pre_allocate",
        "head_sha": "83042d709562a53973c78901ca5df7e7cddbe677",
        "base_ref": "master",
        "created_at": utc(2018, 7, 25, 8, 19, 30),
        "updated_at": utc(2018, 8, 29, 4, 11, 46),
        "closed_at": utc(2018, 7, 26, 2, 32, 41),
        "merged_at": utc(2018, 7, 26, 2, 32, 41),
        "merge_commit_sha": "3ddd58c390b0f928a5782c235f90ad0c9c21312c",
        "html_url": "https://github.com/panjf2000/ants/pull/4",
    }
    assert row["title"].startswith("pre-allocate the capacity of the worker list")
    assert row["payload"] is item  # the complete raw item, as received


def test_every_recorded_pull_request_parses() -> None:
    rows = [parse_pull_request(item, "panjf2000/ants") for item in devlake_all("_raw_github_api_pull_requests.csv")]
    assert len(rows) == 50
    assert len({row["id"] for row in rows}) == 49  # the recording holds one item twice: merge on id
    assert sum(1 for row in rows if row["merged_at"] is not None) == 27
    assert sum(1 for row in rows if row["state"] == "open") == 4
    assert all(row["updated_at"] >= row["created_at"] for row in rows)


def test_old_pull_request_shape_without_draft_or_node_id_still_parses() -> None:
    item = replay("Repository.testGetPulls.json")[0]["response"]["body"][0]
    row = parse_pull_request(item, "PyGithub/PyGithub")
    assert (row["id"], row["number"], row["is_draft"], row["node_id"]) == (1436310, 32, None, None)
    assert row["base_ref"] == "topic/RewriteWithGeneratedCode"
    assert row["created_at"] == utc(2012, 5, 27, 10, 58, 41)


def test_recorded_review_commit_check_run_and_repository_rows() -> None:
    pr = {"id": 1, "number": 41, "repository_full_name": "panjf2000/ants"}
    review = parse_review(devlake("_raw_github_api_pull_request_reviews.csv"), pr)
    assert set(review) == set(COLUMNS["reviews"])
    assert (review["id"], review["state"], review["reviewer_login"], review["reviewer_id"]) == (
        277027723,
        "COMMENTED",
        "choleraehyq",
        8923413,
    )
    assert review["submitted_at"] == utc(2019, 8, 20, 9, 5, 2)
    assert (review["pull_request_id"], review["pull_number"]) == (1, 41)

    commit = parse_commit(devlake("_raw_github_api_pull_request_commits.csv"), pr)
    assert set(commit) == set(COLUMNS["commits"])
    assert commit["sha"] == "5bbc9e170bbee27c37bcc30da3da75b4531d1edb"
    assert (commit["author_login"], commit["author_name"], commit["author_email"]) == (
        "choleraehyq",
        "Cholerae Hu",
        "choleraehyq@gmail.com",
    )
    assert (commit["authored_at"], commit["committed_at"]) == (utc(2019, 1, 21, 10, 57, 23), utc(2019, 1, 22, 5, 9, 19))
    assert commit["message"].startswith("feature: add PanicHandler")

    runs = replay("CheckRun.testGetCheckRunsForRef.json")[1]["response"]["body"]["check_runs"]
    rows = [parse_check_run(run, pr) for run in runs]
    assert set(rows[0]) == set(COLUMNS["check_runs"])
    assert [(r["name"], r["conclusion"]) for r in rows] == [
        ("test (Python 3.8)", "success"),
        ("test (Python 3.7)", "success"),
        ("test (Python 3.6)", "failure"),
        ("test (Python 3.5)", "success"),
    ]
    assert rows[2]["completed_at"] - rows[2]["started_at"] == timedelta(minutes=2, seconds=8)

    repo = parse_repository(replay("PaginatedList.testCustomPerPageIteration.json")[0]["response"]["body"])
    assert set(repo) == set(COLUMNS["repositories"])
    assert (repo["id"], repo["full_name"], repo["owner_login"], repo["is_private"], repo["default_branch"]) == (
        3544490,
        "PyGithub/PyGithub",
        "PyGithub",
        False,
        "main",
    )


def test_commit_dates_with_offsets_become_utc() -> None:
    item = replay("PullRequest.testGetCommits.json")[0]["response"]["body"][0]
    row = parse_commit(item, {"id": 2, "number": 31, "repository_full_name": "PyGithub/PyGithub"})
    assert item["commit"]["author"]["date"] == "2012-05-27T00:33:23-07:00"
    assert row["authored_at"] == utc(2012, 5, 27, 7, 33, 23)
    assert row["authored_at"].tzinfo == UTC


def test_parse_timestamp() -> None:
    assert parse_timestamp("2024-03-24T14:52:48Z") == utc(2024, 3, 24, 14, 52, 48)
    assert parse_timestamp("2024-03-24T16:52:48+02:00") == utc(2024, 3, 24, 14, 52, 48)
    assert parse_timestamp("2024-03-24T14:52:48") == utc(2024, 3, 24, 14, 52, 48)
    assert parse_timestamp(None) is None
    for bad in ("yesterday", 1711292000, "2024-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
    assert parse_timestamp("2024-03-24T14:52:48Z").tzinfo == UTC  # type: ignore[union-attr]


# -- malformed items ------------------------------------------------------------------------


def test_malformed_pull_request_names_every_problem() -> None:
    item = devlake("_raw_github_api_pull_requests.csv")
    broken = {**item, "created_at": "not-a-timestamp", "draft": "no", "state": "merged"}
    del broken["number"]
    with pytest.raises(MalformedItem) as caught:
        parse_pull_request(broken, "panjf2000/ants")
    reason = str(caught.value)
    assert "missing required field 'number'" in reason
    assert "'created_at' is not an ISO 8601 timestamp: 'not-a-timestamp'" in reason
    assert "'draft' is not a boolean" in reason
    assert "'state' is 'merged'" in reason
    assert item_key(broken, fallback="panjf2000/ants") == "panjf2000/ants id=203756736"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ([1, 2], "item is a list, not a JSON object"),
        ({"id": "12", "state": "APPROVED"}, "'id' is not an integer: '12'"),
        ({"id": True, "state": "APPROVED"}, "'id' is not an integer: True"),
        ({"id": 1, "state": None}, "required field 'state' is null"),
    ],
)
def test_malformed_review(item: Any, expected: str) -> None:
    with pytest.raises(MalformedItem, match=expected):
        parse_review(item, {"id": 1, "number": 2, "repository_full_name": "o/r"})


def test_missing_nested_objects_are_null_not_errors() -> None:
    review = parse_review(
        {"id": 9, "state": "PENDING", "user": None, "submitted_at": None},
        {"id": 1, "number": 2, "repository_full_name": "o/r"},
    )
    assert (review["reviewer_login"], review["reviewer_id"], review["submitted_at"]) == (None, None, None)
    commit = parse_commit(
        {"sha": "abc", "author": None, "commit": {"message": "x"}},
        {"id": 1, "number": 2, "repository_full_name": "o/r"},
    )
    assert (commit["author_login"], commit["authored_at"], commit["message"]) == (None, None, "x")


def test_quarantine_contract() -> None:
    assert list(COLUMNS[QUARANTINE_TABLE]) == ["resource", "item_key", "reason", "payload", "seen_at"]
    assert COLUMNS[QUARANTINE_TABLE]["payload"]["data_type"] == "json"
    assert COLUMNS["pull_requests"]["id"]["primary_key"] is True
    assert COLUMNS["commits"]["sha"]["primary_key"] and COLUMNS["commits"]["pull_request_id"]["primary_key"]
    assert all(
        spec["data_type"] == "json"
        for name, table in COLUMNS.items()
        for col, spec in table.items()
        if col == "payload"
    )


# -- retry rules ----------------------------------------------------------------------------


def test_recorded_secondary_limit_with_retry_after() -> None:
    response = replay("SpecificExceptions.testAuthenticatedRateLimitExceeded.json")[1]["response"]
    message = response["body"]["message"]
    assert is_rate_limited(403, response["headers"], message)
    decision = retry_decision(403, response["headers"], message, attempt=1, rate_limited=1, policy=POLICY, now=0.0)
    assert decision is not None
    assert (decision.kind, decision.wait) == ("secondary_rate_limit", 60.0)


def test_recorded_primary_limit_waits_until_reset() -> None:
    response = replay("SpecificExceptions.testRateLimitExceeded.json")[1]["response"]
    headers = {**response["headers"], "X-RateLimit-Reset": "1000"}  # header case differs: still found
    decision = retry_decision(
        403, headers, response["body"]["message"], attempt=1, rate_limited=1, policy=POLICY, now=940.0
    )
    assert decision is not None
    assert decision.kind == "primary_rate_limit"
    assert decision.wait == pytest.approx(60.0 + POLICY.reset_margin)


def test_secondary_limit_without_retry_after_waits_a_minute_then_doubles() -> None:
    message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    waits = [
        retry_decision(403, {}, message, attempt=1, rate_limited=n, policy=POLICY, now=0.0).wait  # type: ignore[union-attr]
        for n in (1, 2, 3)
    ]
    assert waits == [60.0, 120.0, 240.0]
    assert retry_decision(429, {}, "", attempt=1, rate_limited=1, policy=POLICY, now=0.0).wait == 60.0  # type: ignore[union-attr]


def test_retry_after_as_http_date() -> None:
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    decision = retry_decision(
        429, {"retry-after": "Mon, 01 Jan 2024 12:00:30 GMT"}, "", attempt=1, rate_limited=1, policy=POLICY, now=now
    )
    assert decision is not None and decision.wait == pytest.approx(30.0)


def test_server_errors_back_off_exponentially_and_other_errors_are_not_retried() -> None:
    recorded_500 = replay("Retry.testReturnsRepoAfter1Retry.json")[0]["response"]
    assert recorded_500["status"] == 500
    waits = [
        retry_decision(
            500, recorded_500["headers"], "Server Error", attempt=n, rate_limited=0, policy=POLICY, now=0
        ).wait  # type: ignore[union-attr]
        for n in (1, 2, 3)
    ]
    assert waits == [2.0, 4.0, 8.0]
    for status in (502, 503, 504):
        assert retry_decision(status, {}, "", attempt=1, rate_limited=0, policy=POLICY, now=0) is not None
    # A 403 that is no rate limit (a permission problem) and a 404 are not retried.
    assert not is_rate_limited(403, {"X-RateLimit-Remaining": "4999"}, "Resource not accessible by integration")
    assert (
        retry_decision(
            403,
            {"x-ratelimit-remaining": "4999"},
            "Resource not accessible",
            attempt=1,
            rate_limited=0,
            policy=POLICY,
            now=0,
        )
        is None
    )
    assert retry_decision(404, {}, "Not Found", attempt=1, rate_limited=0, policy=POLICY, now=0) is None
    assert retry_decision(401, {}, "Bad credentials", attempt=1, rate_limited=0, policy=POLICY, now=0) is None


def test_safe_url_drops_credentials() -> None:
    assert (
        safe_url("https://user:ghp_secret@api.github.com/orgs/x/repos?page=2")
        == "https://api.github.com/orgs/x/repos?page=2"
    )
    assert safe_url("http://127.0.0.1:8765/repos/a/b") == "http://127.0.0.1:8765/repos/a/b"
