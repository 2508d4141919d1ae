"""Parsing the agent platform's run items into raw ``runs`` rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.agent_platform import COLUMNS, parse_run
from connectors.agent_platform.helpers import MalformedItem, item_key, response_message
from connectors.sandbox.agent_platform import agent_platform_world, run_item

NOW = datetime(2025, 6, 2, tzinfo=UTC)


def test_every_generated_run_parses_to_the_table_contract() -> None:
    world = agent_platform_world("acme", now=NOW)
    for run in world.ordered():
        row = parse_run(run_item(run))
        assert list(row) == list(COLUMNS["runs"])
        assert row["run_id"] == run.id and row["updated_at"] == run.updated_at
        assert row["cost_usd"] == run.cost_usd
        assert row["error_category"] == run.error_category


def test_malformed_items_name_every_problem() -> None:
    run = agent_platform_world("acme", now=NOW).ordered()[0]
    item = run_item(run)
    item["user"] = {"name": "x"}
    item["status"] = "exploded"
    item["usage"]["input_tokens"] = -1
    item["cost_usd"] = "cheap"
    item["created_at"] = "soon"
    with pytest.raises(MalformedItem) as caught:
        parse_run(item)
    assert str(caught.value).split("; ") == [
        "missing required field 'user.email'",
        "'status' is 'exploded', not one of ['cancelled', 'failed', 'queued', 'running', 'succeeded']",
        "'created_at' is not an ISO 8601 timestamp: 'soon'",
        "'usage.input_tokens' is negative: -1",
        "'cost_usd' is not a number: 'cheap'",
    ]
    assert item_key(item) == f"run id={run.id}"
    with pytest.raises(MalformedItem, match="item is a list"):
        parse_run([1])
    assert item_key([1]) == "run"


def test_error_bodies_give_their_message() -> None:
    import requests

    response = requests.Response()
    response._content = b'{"error": {"code": "unauthorized", "message": "missing or invalid API token"}}'
    assert response_message(response) == "missing or invalid API token"
