"""History import, without a database: reading files and validating rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.agent_platform import agent_platform_world, run_item
from pulse.agents import ImportFileError, InvalidRow, parse_file, validate_row
from pulse.agents.importer import ImportReport, Rejection, content_run_id

NOW = datetime(2025, 6, 2, tzinfo=UTC)


def flat(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": "run_1",
        "agent_type": "triage",
        "user_email": "Ada.Berg@acme.example",
        "user_name": "Ada Berg",
        "team": "platform",
        "status": "succeeded",
        "model_name": "claude-sonnet-4-5",
        "model_version": "20250929",
        "created_at": "2025-05-01T10:00:00Z",
        "started_at": "2025-05-01T10:00:05Z",
        "ended_at": "2025-05-01T10:02:00Z",
        "updated_at": "2025-05-01T10:02:10Z",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 0,
        "cache_write_tokens": 50,
        "cost_usd": 0.0123,
    }
    row.update(changes)
    return row


def test_api_item_shape_is_flattened_to_the_raw_columns() -> None:
    world = agent_platform_world("imp_unit", now=NOW)
    run = next(r for r in world.ordered() if r.status == "failed")
    item = run_item(run)
    row = validate_row(item)
    assert row["run_id"] == run.id
    assert (row["user_email"], row["user_name"], row["team"]) == (run.person.email, run.person.name, run.team)
    assert (row["model_name"], row["model_version"]) == (run.model_name, run.model_version)
    assert (row["created_at"], row["started_at"], row["ended_at"], row["updated_at"]) == (
        run.created_at,
        run.started_at,
        run.ended_at,
        run.updated_at,
    )
    assert row["input_tokens"] == run.input_tokens and row["cache_write_tokens"] == run.cache_write_tokens
    assert row["cost_usd"] == run.cost_usd
    assert (row["error_category"], row["error_message"]) == (run.error_category, run.error_message)
    assert row["payload"] == item


def test_flat_row_with_csv_strings_is_typed() -> None:
    row = validate_row(
        {k: (str(v) if v is not None else None) for k, v in flat(cost_usd="", status="Canceled").items()}
    )
    assert row["user_email"] == "ada.berg@acme.example"
    assert row["status"] == "cancelled"
    assert row["input_tokens"] == 1200 and isinstance(row["input_tokens"], int)
    assert row["cost_usd"] is None
    assert row["ended_at"] == datetime(2025, 5, 1, 10, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"user_email": None}, "missing user_email"),
        ({"user_email": "ada"}, "user_email is not an email address: 'ada'"),
        ({"started_at": "yesterday"}, "unparseable started_at: 'yesterday'"),
        ({"input_tokens": -5}, "negative input_tokens: -5"),
        ({"output_tokens": "lots"}, "output_tokens is not a whole number: 'lots'"),
        ({"status": "exploded"}, "unknown status 'exploded'"),
        ({"ended_at": "2025-05-01T09:00:00Z"}, "ended before started"),
        ({"cost_usd": -1}, "negative cost_usd: -1.0"),
        ({"created_at": None, "started_at": None}, "missing created_at"),
    ],
)
def test_invalid_rows_say_why(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRow) as caught:
        validate_row(flat(**changes))
    assert reason in str(caught.value)


def test_every_problem_of_a_row_is_reported() -> None:
    with pytest.raises(InvalidRow) as caught:
        validate_row(flat(user_email=None, status="nope", input_tokens=-1))
    assert len(caught.value.reasons) == 3


def test_defaults_and_deterministic_run_id() -> None:
    row = validate_row(flat(run_id=None, created_at=None, updated_at=None))
    assert row["created_at"] == datetime(2025, 5, 1, 10, 0, 5, tzinfo=UTC)  # from started_at
    assert row["updated_at"] == datetime(2025, 5, 1, 10, 2, tzinfo=UTC)  # the latest timestamp
    assert row["run_id"].startswith("imp_") and len(row["run_id"]) == 36
    assert row["run_id"] == validate_row(flat(run_id=None, created_at=None, updated_at=None))["run_id"]
    assert row["run_id"] == content_run_id(row)
    # the same content from CSV strings gets the same id
    as_text = {
        k: (str(v) if v is not None else None) for k, v in flat(run_id=None, created_at=None, updated_at=None).items()
    }
    assert validate_row(as_text)["run_id"] == row["run_id"]
    assert validate_row(flat(run_id=None, input_tokens=1))["run_id"] != row["run_id"]


def test_parse_jsonl_numbers_lines_and_flags_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(flat()) + "\n\n" + "{not json\n" + "[1, 2]\n" + json.dumps(flat(run_id="run_2")) + "\n")
    records = list(parse_file(path))
    assert [(r.line, r.problem is None) for r in records] == [(1, True), (3, False), (4, False), (5, True)]
    assert records[1].problem is not None and records[1].problem.startswith("not valid JSON")
    assert records[2].problem == "a JSON list, not an object"


def test_parse_csv_uses_physical_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(
        'run_id,user_email,status,created_at\nr1,a@x.example,succeeded,2025-05-01\nr2,"b@x.example",failed,\n'
    )
    records = list(parse_file(path))
    assert [r.line for r in records] == [2, 3]
    assert records[1].data == {"run_id": "r2", "user_email": "b@x.example", "status": "failed", "created_at": None}


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="pass --format jsonl or csv"):
        list(parse_file(tmp_path / "runs.txt"))
    with pytest.raises(ImportFileError, match="no file"):
        list(parse_file(tmp_path / "missing.jsonl"))
    headless = tmp_path / "headless.csv"
    headless.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFileError, match="no header row"):
        list(parse_file(headless))


def test_report_caps_the_rejections_it_lists() -> None:
    report = ImportReport("imp_a", "runs.jsonl", "jsonl", dry_run=True, new=2, updated=1, unchanged=3)
    report.rejected = [Rejection(line, "missing user_email") for line in range(1, 26)]
    text = report.render()
    assert "kept: 6 (new 2, updated 1, unchanged 3)" in text
    assert "rejected: 25" in text
    assert "line 20: missing user_email" in text and "line 21:" not in text
    assert "… and 5 more rejected lines" in text
    assert text.startswith("dry run (nothing written)")
