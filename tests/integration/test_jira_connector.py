"""The Jira connector against the Jira sandbox over HTTP and a real PostgreSQL (``db_url``).

A sandbox of its own (small planning worlds, the same code as the session's) keeps these
tests quick; each test uses a tenant of its own. Expected values come from the tenant's
world, the source of truth, through the sandbox's renderer only where Jira adds facts of its
own (the number of changelog histories, the Sprint field's list).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
from dlt.common.pipeline import LoadInfo
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.jira import (
    JiraApiError,
    JiraAuthError,
    JiraRateLimitError,
    check_connection,
    dataset_name,
    discover_fields,
    jira_policy,
    jira_source,
    load_jira,
    row_counts,
)
from connectors.sandbox import SandboxFaults, SandboxServer
from connectors.sandbox.jira import EMBEDDED_HISTORIES, STORY_POINTS_FIELD, Site
from connectors.sandbox.jira.render import DMT_FIELDS, SPRINT_FIELD, account_id, dmt_anchor, dmt_values
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import WorkItem, WorkWorld
from pulse.fieldmap import CANONICAL_NAMES, propose
from tests.conftest import free_port

#: The sandbox world's day, fixed: a world is a function of its day, so today's world would
#: give the test other items (and maybe none of a case it needs) each day.
WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)

FAST = jira_policy(server_error_backoff=0.05, secondary_limit_wait=0.1, max_backoff=0.5, reset_margin=0.2)
TABLES = ("issues", "issue_changes", "sprints", "boards", "fields", "statuses", "users", "quarantine")
WORLD_FIELDS = ("status", "sprint", "assignee", "story_points")


@pytest.fixture(scope="module")
def jira() -> Iterator[SandboxServer]:
    server = SandboxServer(host="127.0.0.1", port=0, seed=42, work_scale=0.3, history_days=60, now=WORLD_DAY).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def faults(jira: SandboxServer) -> Iterator[SandboxFaults]:
    jira.faults.reset()
    try:
        yield jira.faults
    finally:
        jira.faults.reset()


def base_url(server: SandboxServer) -> str:
    return f"{server.url}/jira"


def credentials(tenant: str, **overrides: str) -> dict[str, str]:
    return {"email": f"pulse@{tenant}.example", "token": token_for("jira", tenant), **overrides}


def load(
    server: SandboxServer,
    db_url: str,
    tenant: str,
    pipelines_dir: Path,
    *,
    creds: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    policy: Any = FAST,
    page_size: int = 20,
) -> LoadInfo:
    source = jira_source(
        base_url(server),
        creds or credentials(tenant),
        config or {},
        start_date=start_date,
        end_date=end_date,
        page_size=page_size,
        retry_policy=policy,
    )
    return load_jira(tenant, db_url, source, pipelines_dir=str(pipelines_dir))


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def table_counts(db_url: str, tenant: str) -> dict[str, int]:
    schema = dataset_name(tenant)
    existing = {
        row[0]
        for row in query(db_url, "select table_name from information_schema.tables where table_schema = %s", schema)
    }
    return {
        table: query(db_url, f'select count(*) from "{schema}"."{table}"')[0][0] if table in existing else 0
        for table in TABLES
    }


@overload
def ms(moment: datetime) -> datetime: ...
@overload
def ms(moment: datetime | None) -> datetime | None: ...
def ms(moment: datetime | None) -> datetime | None:
    """Jira writes timestamps to the millisecond."""
    return None if moment is None else moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def expected_counts(server: SandboxServer, world: WorkWorld, items: list[WorkItem] | None = None) -> dict[str, int]:
    site = Site(world, base_url(server))
    chosen = world.items if items is None else items
    return {
        "issues": len(chosen),
        "issue_changes": sum(len(history["items"]) for item in chosen for history in site.histories(item)),
        "sprints": len(world.sprints),
        "boards": len(world.projects),
        "fields": len(site.fields()),
        "statuses": len(site.statuses()),
        "users": len(world.people) + 1,  # and the automation app
        "quarantine": 0,
    }


def keys_checksum(db_url: str, tenant: str) -> tuple[str, str]:
    schema = dataset_name(tenant)
    issues = query(db_url, f"select string_agg(id, ',' order by id) from {schema}.issues")[0][0]
    changes = query(
        db_url, f"select string_agg(history_id || ':' || item_index, ',' order by history_id, item_index) from "
        f"{schema}.issue_changes",
    )[0][0]  # fmt: skip
    return hashlib.sha256(issues.encode()).hexdigest(), hashlib.sha256(changes.encode()).hexdigest()


def world_checksum(server: SandboxServer, world: WorkWorld) -> tuple[str, str]:
    site = Site(world, base_url(server))
    issues = ",".join(sorted(str(item.id) for item in world.items))
    changes = ",".join(
        sorted(f"{history['id']}:{n}" for item in world.items for history in site.histories(item)
               for n in range(len(history["items"]))),
    )  # fmt: skip
    return hashlib.sha256(issues.encode()).hexdigest(), hashlib.sha256(changes.encode()).hexdigest()


def test_full_load_lands_the_world_with_complete_changelogs(
    jira: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    tenant = "jira_full"
    world = jira.work_world(tenant)
    site = Site(world, base_url(jira))
    long = [item for item in world.items if len(site.histories(item)) > EMBEDDED_HISTORIES]
    assert long, "the world has issues whose changelog search cuts short"
    faults.too_many_requests = 1  # 429 with Retry-After: 1
    faults.server_errors = 1  # 500
    faults.path_contains = "/search/jql"
    mark = len(jira.requests)
    info = load(jira, db_url, tenant, tmp_path)

    expected = expected_counts(jira, world)
    assert table_counts(db_url, tenant) == expected
    assert row_counts(info) == {table: n for table, n in expected.items() if n}
    served = jira.requests_since(mark)
    assert [(r.status, r.fault) for r in served if r.fault] == [(429, "too_many_requests"), (500, "server_errors")]
    schema = dataset_name(tenant)
    # Every world change is in issue_changes, marked with its canonical field; so is every DMT edit.
    by_field = dict(
        query(
            db_url,
            f"select canonical_field, count(*) from {schema}.issue_changes "
            "where canonical_field is not null group by 1",
        )
    )
    assert {f: by_field.get(f, 0) for f in WORLD_FIELDS} == {
        f: sum(1 for item in world.items for c in item.changes if c.field == f) for f in WORLD_FIELDS
    }
    dmt = {name: n for name, n in by_field.items() if name.startswith("dmt_")}
    assert sum(dmt.values()) == sum(len(dmt_values(item)) for item in world.items if dmt_anchor(item))
    # The long changelogs were completed through the bulk endpoint, at most once per search page.
    bulk = [r for r in served if "/changelog/bulkfetch" in r.path]
    searches = [r for r in served if "/search/jql" in r.path and r.status == 200]
    ranks = {p.key: n for n, p in enumerate(sorted(world.projects, key=lambda p: p.key))}
    ordered = sorted(world.items, key=lambda i: (i.created_at, ranks[i.project_key], i.number))
    pages = [ordered[n : n + 20] for n in range(0, len(ordered), 20)]
    assert len(searches) == len(pages)
    assert len(bulk) == sum(1 for page in pages if any(item in long for item in page)) > 0
    assert all("expand=changelog" in r.path for r in searches)
    per_issue = dict(query(db_url, f"select issue_id, count(*) from {schema}.issue_changes group by 1"))
    assert {str(i.id): per_issue[str(i.id)] for i in long} == {str(i.id): len(site.histories(i)) for i in long}

    # Values, field by field, against the world.
    rows = {
        row[0]: row[1:]
        for row in query(
            db_url,
            f"select id, key, project_key, issue_type, status, status_category, story_points, sprint, assignee_email, "
            f"reporter_email, parent_id, caused_by_id, created_at, updated_at, resolved_at, url from {schema}.issues",
        )
    }
    category = {"todo": "new", "in_progress": "indeterminate", "done": "done"}
    assert rows == {
        str(item.id): (
            item.key, item.project_key, item.type.capitalize(), item.status, category[item.status_category],
            item.story_points, str(item.sprint_id) if item.sprint_id else None, item.assignee, item.reporter,
            str(item.parent_id) if item.parent_id else None, str(item.caused_by_id) if item.caused_by_id else None,
            ms(item.created_at), ms(item.updated_at), ms(item.resolved_at), f"{base_url(jira)}/browse/{item.key}",
        )
        for item in world.items
    }  # fmt: skip
    assert any(row[9] for row in rows.values())  # parents
    dmt_rows = {
        row[0]: row[1:]
        for row in query(
            db_url,
            f"select id, dmt_ac_quality, dmt_unit_test_task, dmt_unit_test_status, dmt_coverage_pct, dmt_pr_links, "
            f"dmt_ci_evidence, dmt_reviewer_signoff, dmt_exception, dmt_exception_reason, dmt_exception_approver, "
            f"dmt_exception_expires from {schema}.issues",
        )
    }
    labels = {"incomplete": "Incomplete", "testable": "Testable", "final": "Final", None: None}
    yes_no = {True: "Yes", False: "No", None: None}
    assert dmt_rows == {
        str(item.id): (
            labels[d.ac_quality], yes_no[d.unit_test_task],
            d.unit_test_status.replace("_", " ").capitalize() if d.unit_test_status else None,
            d.coverage_pct, "\n".join(d.pr_links) or None, d.ci_evidence, yes_no[d.reviewer_signoff],
            "Yes" if d.exception else None, d.exception_reason, d.exception_approver,
            d.exception_expires.isoformat() if d.exception_expires else None,
        )
        for item in world.items
        for d in [item.dmt]
    }  # fmt: skip
    # One status change, as Jira wrote it (authors' emails hidden, account ids given).
    item = next(i for i in world.items if any(c.field == "status" for c in i.changes))
    number, change = next((n, c) for n, c in enumerate(item.changes) if c.field == "status")
    row = query(
        db_url,
        f"select changed_at, field, field_id, from_string, to_string, author_account_id, author_email "
        f"from {schema}.issue_changes where history_id = %s and item_index = 0",
        str(item.id * 1000 + number),
    )[0]
    assert row == (ms(change.at), "status", "status", change.from_value, change.to_value, account_id(change.author),
                   None)  # fmt: skip
    sprints = dict(query(db_url, f"select id, state from {schema}.sprints"))
    assert sprints == {s.id: s.state(world.clock) for s in world.sprints}
    assert query(db_url, f"select count(*) from {schema}.users where email is not null")[0][0] == len(world.people)
    # The payload keeps the item as Jira sent it, without the changelog.
    payload = query(db_url, f"select payload from {schema}.issues where id = %s", str(item.id))[0][0]
    assert set(payload) == {"expand", "id", "self", "key", "fields"}
    assert STORY_POINTS_FIELD in payload["fields"] and SPRINT_FIELD in payload["fields"]

    # The raw tables have the contract's columns and types.
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in query(
        db_url,
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = %s and column_name not like '\\_dlt%%'",
        schema,
    ):
        columns.setdefault(table, {})[column] = "text" if data_type == "character varying" else data_type
    issues = columns["issues"]
    assert {name: issues[name] for name in CANONICAL_NAMES} == {
        name: "double precision" if name in ("story_points", "dmt_coverage_pct") else "text" for name in CANONICAL_NAMES
    }
    assert (issues["id"], issues["created_at"], issues["labels"], issues["payload"], issues["hierarchy_level"]) == (
        "text", "timestamp with time zone", "jsonb", "jsonb", "bigint",
    )  # fmt: skip
    assert set(columns["issue_changes"]) == {
        "history_id", "item_index", "issue_id", "issue_key", "changed_at", "author_account_id", "author_email",
        "field", "field_id", "field_type", "canonical_field", "from_value", "from_string", "to_value", "to_string",
        "payload",
    }  # fmt: skip
    assert columns["sprints"]["completed_at"] == "timestamp with time zone"
    assert set(columns["users"]) == {"account_id", "account_type", "email", "display_name", "active", "time_zone",
                                     "payload"}  # fmt: skip


def test_incremental_rerun_fetches_only_what_changed(jira: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "jira_incr"
    world = jira.work_world(tenant)
    load(jira, db_url, tenant, tmp_path / "first")
    cursor = ms(max(item.updated_at for item in world.items))
    change = jira.advance_work_items(tenant, 3)
    changed = [world.item(i) for i in (*change.changed_item_ids, *change.new_item_ids)]
    assert len(changed) == 4

    mark = len(jira.requests)
    second = load(jira, db_url, tenant, tmp_path / "wiped")  # the cursor comes back from the destination
    site = Site(world, base_url(jira))
    assert row_counts(second)["issues"] == 4
    assert row_counts(second)["issue_changes"] == sum(len(site.histories(i)) for i in changed if i)
    assert table_counts(db_url, tenant) == expected_counts(jira, world)
    # The query starts five minutes before the cursor, in the account's time zone, to the minute.
    searches = [r for r in jira.requests_since(mark) if "/search/jql" in r.path]
    assert len(searches) == 1
    jql = parse_qs(urlsplit(searches[0].path).query)["jql"][0]
    assert cursor is not None
    since = (cursor - timedelta(minutes=5)).astimezone(ZoneInfo("America/New_York")).strftime("%Y/%m/%d %H:%M")
    assert f'updated >= "{since}"' in jql and "ORDER BY created ASC" in jql
    schema = dataset_name(tenant)
    for item in changed:
        assert item is not None
        row = query(db_url, f"select status, updated_at from {schema}.issues where id = %s", str(item.id))
        assert row == [(item.status, ms(item.updated_at))]
    assert query(db_url, f"select count(*) - count(distinct id) from {schema}.issues")[0][0] == 0

    third = load(jira, db_url, tenant, tmp_path / "wiped")
    assert row_counts(third).get("issues", 0) == 0 and row_counts(third).get("issue_changes", 0) == 0
    assert table_counts(db_url, tenant) == expected_counts(jira, world)


def test_a_used_up_quota_longer_than_allowed_fails_clearly(jira: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "jira_quota"
    jira.tool_rate_limit = 8  # requests a minute per token: the load needs more, Retry-After says ~60 s
    try:
        mark = len(jira.requests)
        with pytest.raises(JiraRateLimitError) as caught:
            load(jira, db_url, tenant, tmp_path, policy=jira_policy(max_rate_limit_wait=0.5))
        assert str(caught.value).startswith("Jira source 'jira' is rate limited while ")
        assert "longer wait than the allowed 0.5 s; run the load again later" in str(caught.value)
        limited = [r for r in jira.requests_since(mark) if r.status == 429]
        assert len(limited) == 1 and limited[0].fault == "rate_limited"
        assert sum(1 for r in jira.requests_since(mark) if r.status == 200) == 8
    finally:
        jira.tool_rate_limit = 600
    assert table_counts(db_url, tenant) == dict.fromkeys(TABLES, 0)


def test_expired_token_fails_clearly_and_loses_nothing(
    jira: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    tenant = "jira_expired"
    world = jira.work_world(tenant)
    load(jira, db_url, tenant, tmp_path)
    before = table_counts(db_url, tenant)
    jira.advance_work_items(tenant, 2)
    faults.expired_token = 1
    faults.path_contains = "/search/jql"
    with pytest.raises(JiraAuthError) as caught:
        load(jira, db_url, tenant, tmp_path)
    message = str(caught.value)
    assert message.startswith(
        f"Jira at {base_url(jira)} rejected the credentials of source 'jira' (401: Client must be authenticated "
        "to access this resource.) while searching issues"
    )
    assert "expired or revoked" in message and "pulse source add/update" in message
    assert token_for("jira", tenant) not in message
    assert table_counts(db_url, tenant) == before  # nothing lost, nothing half-loaded
    load(jira, db_url, tenant, tmp_path)  # the cursor did not move: the changes come now
    assert table_counts(db_url, tenant) == expected_counts(jira, world)


def test_wrong_token_is_rejected_before_anything_loads(jira: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "jira_wrong"
    secret = "ATATT3xFfGF0_not_a_real_token_0123"
    with pytest.raises(JiraAuthError) as caught:
        load(jira, db_url, tenant, tmp_path, creds={"email": "a@b.example", "token": secret})
    assert secret not in str(caught.value) and "'a@b.example' is not the token owner's email" in str(caught.value)
    assert table_counts(db_url, tenant) == dict.fromkeys(TABLES, 0)


def test_malformed_issue_is_quarantined_and_every_good_row_loads(
    jira: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    tenant = "jira_bad"
    world = jira.work_world(tenant)
    broken = world.malformed_target()
    faults.malformed_work_item = True
    load(jira, db_url, tenant, tmp_path)
    schema = dataset_name(tenant)
    rows = query(db_url, f"select resource, item_key, reason, payload from {schema}.quarantine")
    assert len(rows) == 1
    resource, key, reason, payload = rows[0]
    assert (resource, key) == ("issues", f"issue id={broken.id}")
    assert reason == (
        "missing required field 'key'; missing required field 'fields.status.name'; "
        "'fields.created' is not a Jira timestamp: 'last Tuesday'"
    )
    assert payload["id"] == str(broken.id) and "key" not in payload
    good = [item for item in world.items if item is not broken]
    assert table_counts(db_url, tenant) == {**expected_counts(jira, world, good), "quarantine": 1}
    assert query(db_url, f"select count(*) from {schema}.issues where id = %s", str(broken.id))[0][0] == 0


def test_a_load_killed_midway_loses_and_duplicates_nothing(
    jira: SandboxServer, db_url: str, tmp_path: Path, faults: SandboxFaults
) -> None:
    tenant = "jira_killed"
    world = jira.work_world(tenant)
    # A first load dies when completing a long changelog, after its first page of issues.
    faults.server_errors = 1000
    faults.path_contains = "/changelog/bulkfetch"
    mark = len(jira.requests)
    with pytest.raises(JiraApiError) as caught:
        load(jira, db_url, tenant, tmp_path, policy=jira_policy(max_attempts=1))
    assert caught.value.status == 500 and "/changelog/bulkfetch" in caught.value.url
    assert any("/search/jql" in r.path and r.status == 200 for r in jira.requests_since(mark))
    assert table_counts(db_url, tenant) == dict.fromkeys(TABLES, 0)
    faults.reset()
    load(jira, db_url, tenant, tmp_path)
    before = table_counts(db_url, tenant)
    assert before == expected_counts(jira, world)

    # An incremental load is killed by an exception after two issues of its walk.
    jira.advance_work_items(tenant, 5)
    source = jira_source(base_url(jira), credentials(tenant), {}, page_size=1, retry_policy=FAST)
    seen: list[str] = []

    def die_after_two(row: Any) -> Any:
        seen.append(row["id"])
        if len(seen) > 2:
            raise RuntimeError("killed")
        return row

    source.resources["issues"].add_map(die_after_two)
    with pytest.raises(PipelineStepFailed, match="killed"):
        load_jira(tenant, db_url, source, pipelines_dir=str(tmp_path))
    assert table_counts(db_url, tenant) == before  # nothing half-loaded
    load(jira, db_url, tenant, tmp_path)
    assert table_counts(db_url, tenant) == expected_counts(jira, world)
    assert keys_checksum(db_url, tenant) == world_checksum(jira, world)
    again = load(jira, db_url, tenant, tmp_path)
    assert row_counts(again).get("issues", 0) == 0
    assert keys_checksum(db_url, tenant) == world_checksum(jira, world)


def test_backfill_window_loads_only_its_issues_and_keeps_the_cursor(
    jira: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    tenant = "jira_window"
    world = jira.work_world(tenant)
    start, end = world.now - timedelta(days=30), world.now - timedelta(days=10)
    inside = [item for item in world.items if start <= ms(item.updated_at) < end]
    assert inside and len(inside) < len(world.items)
    info = load(jira, db_url, tenant, tmp_path, start_date=start, end_date=end)
    assert row_counts(info)["issues"] == len(inside)
    schema = dataset_name(tenant)
    assert {r[0] for r in query(db_url, f"select id from {schema}.issues")} == {str(i.id) for i in inside}
    # The window did not move the cursor: the next plain run loads everything.
    info = load(jira, db_url, tenant, tmp_path)
    assert row_counts(info)["issues"] == len(world.items)
    assert table_counts(db_url, tenant) == expected_counts(jira, world)


def test_projects_config_limits_the_load(jira: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "jira_one_project"
    world = jira.work_world(tenant)
    key = world.projects[1].key
    load(jira, db_url, tenant, tmp_path, config={"projects": key.lower()})
    schema = dataset_name(tenant)
    assert query(db_url, f"select distinct project_key from {schema}.issues") == [(key,)]
    assert query(db_url, f"select count(*) from {schema}.issues")[0][0] == sum(
        1 for i in world.items if i.project_key == key
    )
    assert query(db_url, f"select distinct project_key from {schema}.sprints") == [(key,)]


def test_discovery_maps_every_canonical_field_by_schema_first(jira: SandboxServer) -> None:
    tenant = "jira_discover"
    candidates = discover_fields(base_url(jira), credentials(tenant), {})
    proposal = propose(candidates)
    assert proposal.missing == []
    assert set(proposal.mappings) == set(CANONICAL_NAMES)
    assert (proposal.mappings["story_points"].field_id, proposal.mappings["story_points"].method) == (
        STORY_POINTS_FIELD,
        "schema",
    )
    assert (proposal.mappings["sprint"].field_id, proposal.mappings["sprint"].method) == (SPRINT_FIELD, "schema")
    expected = {f"dmt_{attribute}": spec[0] for attribute, spec in DMT_FIELDS.items()}
    assert {name: proposal.mappings[name].field_id for name in expected} == expected
    types = {c.id: c.type for c in candidates}
    assert (types[DMT_FIELDS["coverage_pct"][0]], types[DMT_FIELDS["pr_links"][0]]) == ("number", "text")
    assert (types[DMT_FIELDS["exception_approver"][0]], types[DMT_FIELDS["exception_expires"][0]]) == ("user", "date")
    assert types["customfield_10026"] == "string"  # "Story Points (old)": a decoy only its schema unmasks


def test_check_connection_says_what_failed(jira: SandboxServer) -> None:
    tenant = "jira_check"
    world = jira.work_world(tenant)
    keys = ", ".join(p.key for p in world.projects)
    ok, message = check_connection(base_url(jira), credentials(tenant), {})
    assert ok, message
    assert message == (
        f"ok: signed in to {base_url(jira)} as Pulse <pulse@{tenant}.example> (time zone America/New_York); "
        f"{len(world.projects)} projects readable: {keys}"
    )
    ok, message = check_connection(base_url(jira), credentials(tenant), {"projects": world.projects[0].key})
    assert ok and message.endswith(f"1 projects readable: {world.projects[0].key}")

    port = free_port()
    ok, message = check_connection(f"http://127.0.0.1:{port}/jira", credentials(tenant), {}, timeout=2)
    assert not ok and f"Jira at http://127.0.0.1:{port}/jira is unreachable" in message and "base URL" in message

    secret = "atl_sandbox_someone_else_x"
    ok, message = check_connection(base_url(jira), credentials(tenant, token=secret + "!"), {})
    assert not ok and "rejected the credentials of source 'jira' (401" in message and secret not in message

    ok, message = check_connection(
        base_url(jira), credentials(tenant, token=token_for("jira", tenant, noperm=True)), {}
    )
    assert not ok
    assert message.startswith(f"signed in to {base_url(jira)} as Pulse <pulse@{tenant}.example>, but the account")
    assert "lacks the Browse projects permission" in message

    ok, message = check_connection(base_url(jira), credentials(tenant), {"projects": f"{world.projects[0].key},NOPE"})
    assert not ok
    assert message.startswith(f"unknown project NOPE at {base_url(jira)}") and f"can read: {keys}" in message

    ok, message = check_connection(base_url(jira), {"email": "a@b.example"}, {})
    assert not ok and "has no API token" in message


def test_an_unknown_project_fails_the_load_with_a_hint(jira: SandboxServer, db_url: str, tmp_path: Path) -> None:
    with pytest.raises(JiraApiError) as caught:
        load(jira, db_url, "jira_nope", tmp_path, config={"projects": "NOPE"})
    assert caught.value.status == 400
    assert "does not know a project of source 'jira'" in str(caught.value)
    assert "check the source's `projects` config" in str(caught.value)
