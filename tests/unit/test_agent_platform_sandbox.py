"""The sandbox's agent platform: its seeded world, and its runs API over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.sandbox import SandboxFaults, SandboxServer
from connectors.sandbox.agent_platform import agent_platform_world, run_item, token_for
from connectors.sandbox.agent_platform.world import cost_usd
from connectors.sandbox.github.world import github_world

NOW = datetime(2025, 6, 2, tzinfo=UTC)
RUNS = "/agent-platform/v1/runs"


def get(sandbox: SandboxServer, path: str, tenant: str | None = "aps_unit", **params: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {token_for(tenant)}"} if tenant else {}
    return requests.get(sandbox.url + path, params=params, headers=headers, timeout=10)


def test_world_is_deterministic_and_realistic() -> None:
    world = agent_platform_world("acme", seed=42, now=NOW)
    again = agent_platform_world("acme", seed=42, now=NOW)
    assert [run_item(r) for r in world.ordered()] == [run_item(r) for r in again.ordered()]
    assert [r.id for r in agent_platform_world("other", now=NOW).ordered()] != [r.id for r in world.ordered()]

    counts = world.counts()
    finished = [r for r in world.runs.values() if r.is_finished]
    assert 500 <= counts["runs"] <= 805
    assert 0.80 <= counts["succeeded"] / len(finished) <= 0.90
    assert counts["failed"] > 0 and counts["cancelled"] > 0
    assert 3 <= counts["queued"] + counts["running"] <= 5
    assert 0.05 <= sum(r.cost_usd is None for r in finished) / len(finished) <= 0.15
    assert all(NOW - timedelta(days=91) <= r.created_at < NOW for r in world.runs.values())
    assert all(r.updated_at < NOW for r in world.runs.values())
    assert all(r.ended_at is None and r.cost_usd is None for r in world.in_flight())
    for run in finished:
        assert run.started_at is not None and run.ended_at is not None and run.started_at <= run.ended_at
        assert (run.error_category is not None) == (run.status == "failed")
        assert run.cost_usd is None or run.cost_usd == cost_usd(run)
    # the GitHub sandbox's people: same emails, names and teams
    people = {(u.email, u.name, u.team) for u in github_world("acme", 42, NOW).users if u.type == "User"}
    assert {(p.email, p.name, p.team) for p in world.people} == people
    assert {r.person.email for r in world.runs.values()} <= {email for email, _, _ in people}


def test_advance_finishes_the_runs_in_flight() -> None:
    world = agent_platform_world("acme", now=NOW)
    before = max(r.updated_at for r in world.runs.values())
    in_flight = [r.id for r in world.in_flight()]
    change = world.advance(at=NOW + timedelta(hours=2))
    assert change.finished_run_ids == tuple(in_flight)
    for run_id in in_flight:
        run = world.runs[run_id]
        assert run.status in ("succeeded", "failed")
        assert run.ended_at is not None and run.input_tokens > 0 and run.updated_at > before
    assert len(change.new_run_ids) == 2
    assert [world.runs[i].status for i in change.new_run_ids][-1] == "running"
    assert world.in_flight() == [world.runs[change.new_run_ids[-1]]]


def test_cursor_paging_lists_every_run_once_in_order(sandbox: SandboxServer) -> None:
    world = sandbox.agent_world("aps_unit")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"page_size": 173}
        if cursor:
            params["cursor"] = cursor
        response = get(sandbox, RUNS, **params)
        assert response.status_code == 200
        body = response.json()
        assert len(body["data"]) <= 173
        seen += [item["id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [r.id for r in world.ordered()]
    assert response.headers["X-RateLimit-Limit"] == "5000"
    assert int(response.headers["X-RateLimit-Remaining"]) < 5000
    assert int(response.headers["X-RateLimit-Reset"]) > 0


def test_updated_after_is_inclusive_and_single_runs_are_served(sandbox: SandboxServer) -> None:
    world = sandbox.agent_world("aps_unit")
    middle = world.ordered()[len(world.runs) // 2]
    body = get(sandbox, RUNS, page_size=200, updated_after=middle.updated_at.isoformat()).json()
    assert body["data"][0]["updated_at"] == run_item(middle)["updated_at"]
    assert all(item["updated_at"] >= run_item(middle)["updated_at"] for item in body["data"])
    assert get(sandbox, f"{RUNS}/{middle.id}").json() == run_item(middle)
    missing = get(sandbox, f"{RUNS}/run_nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "params",
    [{"page_size": 201}, {"page_size": "x"}, {"updated_after": "soon"}, {"cursor": "!!"}],
)
def test_bad_parameters_are_400(sandbox: SandboxServer, params: dict[str, object]) -> None:
    response = get(sandbox, RUNS, **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_tokens_decide_the_tenant(sandbox: SandboxServer) -> None:
    for headers in ({}, {"Authorization": "Bearer ghs_sandbox_aps_unit"}, {"Authorization": "Bearer nope"}):
        response = requests.get(sandbox.url + RUNS, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json() == {"error": {"code": "unauthorized", "message": "missing or invalid API token"}}
    other = get(sandbox, RUNS, tenant="aps_other", page_size=1).json()["data"][0]["user"]["email"]
    assert other.endswith("@aps-other.example")


def test_faults_answer_429_and_500(sandbox: SandboxServer, sandbox_faults: SandboxFaults) -> None:
    sandbox_faults.secondary_rate_limit_once = 1
    sandbox_faults.primary_rate_limit_once = 1
    sandbox_faults.server_errors = 1
    first, second, third = (get(sandbox, RUNS) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 500)
    assert first.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" not in first.headers
    assert second.headers["Retry-After"] == "1"
    assert get(sandbox, RUNS).status_code == 200

    sandbox_faults.malformed_run = True
    broken = sandbox.agent_world("aps_unit").malformed_target()
    item = next(i for i in get(sandbox, RUNS, page_size=200).json()["data"] if i["id"] == broken.id)
    assert "email" not in item["user"] and item["started_at"] == "yesterday afternoon"
