"""The Azure Boards connector against the sandbox over HTTP and a real PostgreSQL (``db_url``).

Each test uses a tenant of its own (``ab_*``), so worlds the tests advance and datasets do not
interfere. Expected values are computed here from the sandbox's planning world (the source of
truth), with the Agile mapping written out by hand: To Do → New, In Progress and Blocked →
Active (Blocked = "Yes"), In Review → Resolved (a Task stays Active), Done → Closed.
"""

from __future__ import annotations

import hashlib
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dlt.common.pipeline import LoadInfo

from connectors.azure_boards import (
    AzureBoardsAuthError,
    RetryPolicy,
    azure_boards_source,
    check_connection,
    dataset_name,
    discover_fields,
    load_azure_boards,
    row_counts,
)
from connectors.sandbox import SandboxFaults, SandboxServer
from connectors.sandbox.tools import token_for
from connectors.sandbox.work.world import WorkItem, WorkWorld
from pulse.fieldmap import CANONICAL_NAMES, propose

FAST = RetryPolicy(server_error_backoff=0.05, secondary_limit_wait=0.1, reset_margin=0.2, max_backoff=0.3)
STATE = {"To Do": "New", "In Progress": "Active", "Blocked": "Active", "In Review": "Resolved", "Done": "Closed"}
TYPES = {"story": "User Story", "bug": "Bug", "task": "Task", "epic": "Epic"}
DIMENSIONS = ("projects", "fields", "states", "iterations", "team_members")
FIELDS_IN_SANDBOX = 46  # /_apis/wit/fields: system, Agile, 11 DMT fields and 5 look-alikes
STATES_PER_PROJECT = 5 + 4 + 4 + 5  # User Story, Bug, Task, Epic (Task and Bug have no Removed/Resolved)


def base_url(sandbox: SandboxServer, tenant: str) -> str:
    return f"{sandbox.url}/azure/{tenant}-eng"


def creds(tenant: str, *, noperm: bool = False) -> dict[str, str]:
    return {"token": token_for("azure", tenant, noperm=noperm)}


def load(
    sandbox: SandboxServer,
    db_url: str,
    tenant: str,
    pipelines_dir: Path,
    *,
    config: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    policy: RetryPolicy = FAST,
    page_size: int = 100,
    field_mappings: dict[str, str] | None = None,
    source: Any = None,
) -> LoadInfo:
    source = source or azure_boards_source(
        base_url(sandbox, tenant),
        credentials or creds(tenant),
        config or {},
        field_mappings=field_mappings,
        start_date=start_date,
        end_date=end_date,
        page_size=page_size,
        retry_policy=policy,
    )
    return load_azure_boards(tenant, db_url, source, pipelines_dir=str(pipelines_dir))


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def count(db_url: str, tenant: str, table: str) -> int:
    schema = dataset_name(tenant)
    exists = query(
        db_url, "select 1 from information_schema.tables where table_schema = %s and table_name = %s", schema, table
    )
    return query(db_url, f'select count(*) from "{schema}"."{table}"')[0][0] if exists else 0


def ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def moments(item: WorkItem) -> list[datetime]:
    """When the item's Azure revisions were made: creation, then each distinct change moment."""
    created = ms(item.created_at)
    return [created, *sorted({max(ms(change.at), created) for change in item.changes})]


def expected_counts(world: WorkWorld) -> dict[str, int]:
    return {
        "work_items": len(world.items),
        "work_item_revisions": sum(len(moments(item)) for item in world.items),
        "iterations": len(world.sprints),
        "states": STATES_PER_PROJECT * len(world.projects),
        "fields": FIELDS_IN_SANDBOX,
        "team_members": len([p for p in world.people if p.team in {project.team for project in world.projects}]),
        "projects": len(world.projects),
    }


def table_counts(db_url: str, tenant: str) -> dict[str, int]:
    return {table: count(db_url, tenant, table) for table in ("work_items", "work_item_revisions", *DIMENSIONS)}


def expected_state(item: WorkItem) -> str:
    if item.type == "task" and item.status == "In Review":
        return "Active"
    return STATE[item.status]


def expected_path(world: WorkWorld, item: WorkItem) -> str:
    sprint = world.sprint(item.sprint_id) if item.sprint_id else None
    return f"{item.project_key}\\{sprint.name}" if sprint else item.project_key


def key_checksum(db_url: str, tenant: str) -> tuple[str, str]:
    schema = dataset_name(tenant)
    items = query(db_url, f"select string_agg(id::text, ',' order by id) from \"{schema}\".work_items")[0][0]
    revisions = query(
        db_url,
        f"select string_agg(id::text || '.' || rev::text, ',' order by id, rev) from \"{schema}\".work_item_revisions",
    )[0][0]
    return hashlib.sha256(items.encode()).hexdigest(), hashlib.sha256(revisions.encode()).hexdigest()


def world_checksum(world: WorkWorld) -> tuple[str, str]:
    items = ",".join(str(item.id) for item in sorted(world.items, key=lambda i: i.id))
    revisions = ",".join(
        f"{item.id}.{rev}"
        for item in sorted(world.items, key=lambda i: i.id)
        for rev in range(1, len(moments(item)) + 1)
    )
    return hashlib.sha256(items.encode()).hexdigest(), hashlib.sha256(revisions.encode()).hexdigest()


@pytest.fixture
def faults(sandbox_faults: SandboxFaults) -> Iterator[SandboxFaults]:
    yield sandbox_faults


WORK_ITEM_COLUMNS = (
    "work_item_type, state, title, assigned_to_email, created_by_email, created_at, changed_at, closed_at, "
    "iteration_path, project, blocked, parent_id, caused_by_id, story_points, sprint, dmt_ac_quality, "
    "dmt_unit_test_task, dmt_unit_test_status, dmt_coverage_pct, dmt_pr_links, dmt_ci_evidence, "
    "dmt_reviewer_signoff, dmt_exception, dmt_exception_reason, dmt_exception_approver, dmt_exception_expires"
)
AC = {"incomplete": "Incomplete", "testable": "Testable", "final": "Final"}
UNIT = {
    "not_started": "Not Started",
    "in_progress": "In Progress",
    "done": "Done",
    "exception_approved": "Exception Approved",
}


def expected_row(world: WorkWorld, item: WorkItem) -> tuple[Any, ...]:
    dmt, epic = item.dmt, item.type == "epic"
    ever_blocked = any(c.field == "status" and c.to_value == "Blocked" for c in item.changes)
    path = expected_path(world, item)
    return (
        TYPES[item.type],
        expected_state(item),
        item.title,
        item.assignee,
        item.reporter,
        ms(item.created_at),
        moments(item)[-1],
        ms(item.resolved_at) if item.resolved_at else None,
        path,
        item.project_key,
        ("Yes" if item.status == "Blocked" else "No") if ever_blocked else None,
        item.parent_id,
        item.caused_by_id,
        item.story_points,
        path,
        None if epic or dmt.ac_quality is None else AC[dmt.ac_quality],
        None if epic else dmt.unit_test_task,
        None if epic or dmt.unit_test_status is None else UNIT[dmt.unit_test_status],
        None if epic else dmt.coverage_pct,
        "\n".join(dmt.pr_links) or None,
        dmt.ci_evidence,
        None if epic else dmt.reviewer_signoff,
        None if epic else dmt.exception,
        dmt.exception_reason,
        dmt.exception_approver,
        dmt.exception_expires,
    )


def row_of(db_url: str, tenant: str, item_id: int) -> tuple[Any, ...]:
    rows = query(db_url, f'select {WORK_ITEM_COLUMNS} from "{dataset_name(tenant)}".work_items where id = %s', item_id)
    assert len(rows) == 1, f"work item {item_id}: {len(rows)} rows"
    return rows[0]


def test_full_load_lands_every_item_revision_and_dimension(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ab_full"
    world = sandbox.work_world(tenant)
    info = load(sandbox, db_url, tenant, tmp_path)

    expected = expected_counts(world)
    assert {table: n for table, n in row_counts(info).items() if table != "quarantine"} == expected
    assert table_counts(db_url, tenant) == expected
    assert count(db_url, tenant, "quarantine") == 0
    # Field by field, for items of every kind the world has.
    items = world.items
    # (The world depends on the day: kinds that may be missing on some day are optional.)
    optional = {
        "blocked now": next((i for i in items if i.status == "Blocked"), None),
        "task in review": next((i for i in items if i.type == "task" and i.status == "In Review"), None),
    }
    picks = {
        "unblocked": next(
            i for i in items if i.status != "Blocked" and any(c.to_value == "Blocked" for c in i.changes)
        ),
        "exception": next(i for i in items if i.dmt.exception),
        "post-release bug": next(i for i in items if i.caused_by_id is not None),
        "with a parent": next(i for i in items if i.parent_id is not None and i.pull_request_ids),
        "epic": next(i for i in items if i.type == "epic"),
        "backlog": next(i for i in items if i.sprint_id is None and i.type != "epic"),
        "re-estimated": next(i for i in items if any(c.field == "story_points" for c in i.changes)),
        **{label: item for label, item in optional.items() if item is not None},
    }
    for label, item in picks.items():
        assert row_of(db_url, tenant, item.id) == expected_row(world, item), label
    schema = dataset_name(tenant)
    # Pull request links, as Azure DevOps Git ids, and the raw payload kept.
    linked = picks["with a parent"]
    links, payload_type = query(
        db_url,
        f"select pull_requests, payload->'fields'->>'System.WorkItemType' from \"{schema}\".work_items where id = %s",
        linked.id,
    )[0]
    assert len(links) == len(linked.pull_request_ids) and all(link["pull_request_id"] > 0 for link in links)
    assert payload_type == TYPES[linked.type]
    # Revisions replay the history: the blocked flag, sprint paths and points per revision.
    blocked = picks["unblocked"]
    flags = [
        row[0]
        for row in query(
            db_url, f'select blocked from "{schema}".work_item_revisions where id = %s order by rev', blocked.id
        )
    ]
    assert "Yes" in flags and flags[-1] == "No" and flags[0] is None
    item = picks["re-estimated"]
    points = query(
        db_url, f'select story_points from "{schema}".work_item_revisions where id = %s order by rev', item.id
    )
    assert points[0][0] == item.initial_points and points[-1][0] == item.story_points
    # Dimensions: iterations with Azure's whole-day dates, states with their categories.
    sprint = world.sprints[0]
    assert query(
        db_url,
        f'select path, start_date, finish_date, time_frame from "{schema}".iterations where name = %s',
        sprint.name,
    ) == [
        (
            f"{sprint.project_key}\\{sprint.name}",
            datetime(sprint.start.year, sprint.start.month, sprint.start.day, tzinfo=UTC),
            datetime.combine((sprint.end - timedelta(days=1)).date(), datetime.min.time(), UTC),
            {"closed": "past", "active": "current", "future": "future"}[sprint.state(world.now)],
        )
    ]
    categories = dict(
        query(
            db_url,
            f"select name, category from \"{schema}\".states where work_item_type = 'Bug' and project = %s",
            world.projects[0].key,
        )
    )
    assert categories == {"New": "Proposed", "Active": "InProgress", "Resolved": "Resolved", "Closed": "Completed"}
    emails = {row[0] for row in query(db_url, f'select email from "{schema}".team_members')}
    assert emails == {p.email for p in world.people if p.team in {project.team for project in world.projects}}


def test_raw_tables_have_the_contract_columns(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ab_full"  # loaded by the test above, or now
    if count(db_url, tenant, "work_items") == 0:
        load(sandbox, db_url, tenant, tmp_path)
    rows = query(
        db_url,
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = %s and column_name not like '\\_dlt%%'",
        dataset_name(tenant),
    )
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, {})[column] = "text" if data_type == "character varying" else data_type
    items = columns["work_items"]
    assert items["id"] == "bigint" and items["changed_at"] == "timestamp with time zone"
    assert items["story_points"] == "double precision" and items["dmt_coverage_pct"] == "double precision"
    assert items["dmt_unit_test_task"] == "boolean" and items["dmt_exception_expires"] == "date"
    assert items["payload"] == "jsonb" and items["pull_requests"] == "jsonb" and items["sprint"] == "text"
    assert set(columns["work_item_revisions"]) == {
        "id", "rev", "changed_at", "changed_by_email", "work_item_type", "project", "state", "reason",
        "iteration_path", "story_points", "assigned_to_email", "blocked", "payload",
    }  # fmt: skip
    assert set(columns["iterations"]) >= {"id", "name", "path", "start_date", "finish_date", "time_frame"}


def test_incremental_rerun_fetches_only_what_changed(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ab_incr"
    world = sandbox.work_world(tenant)
    load(sandbox, db_url, tenant, tmp_path / "first")
    before = {item.id: len(moments(item)) for item in world.items}
    change = sandbox.advance_work_items(tenant, 3)
    changed = set(change.changed_item_ids) | set(change.new_item_ids)
    assert len(changed) == 4

    mark = len(sandbox.requests)
    # A wiped pipelines dir: the cursors come back from the destination.
    second = load(sandbox, db_url, tenant, tmp_path / "wiped")
    counts = row_counts(second)
    assert counts["work_items"] == len(changed)
    new_revisions = sum(len(moments(item)) - before.get(item.id, 0) for item in world.items)
    assert counts["work_item_revisions"] == new_revisions
    served = [r for r in sandbox.requests_since(mark) if r.tenant == tenant]
    # One hydration call for each project with a changed item (the changed items, plus the few
    # in the overlap before the cursor, which dlt drops), at most one for another project (its
    # overlap alone; none when the overlap is empty), where the first run needed one per 100
    # items.
    batches = Counter(r.path.split("/")[3] for r in served if "/workitemsbatch" in r.path)
    with_changes = {item.project_key for item in map(world.item, changed) if item is not None}
    assert with_changes and all(batches[project] == 1 for project in with_changes), batches
    assert set(batches) <= {p.key for p in world.projects} and max(batches.values()) == 1, batches
    full_load = sum(-(-len(list(world.items_of(p.key))) // 100) for p in world.projects)
    assert sum(batches.values()) < full_load
    feed = [r for r in served if "/reporting/workitemrevisions" in r.path]
    assert feed and all("startDateTime=" in r.path for r in feed)
    assert table_counts(db_url, tenant) == expected_counts(world)
    for item_id in changed:
        item = world.item(item_id)
        assert item is not None
        assert row_of(db_url, tenant, item_id) == expected_row(world, item)
    assert key_checksum(db_url, tenant) == world_checksum(world)


def test_rate_limits_and_server_errors_are_retried(
    sandbox: SandboxServer, faults: SandboxFaults, db_url: str, tmp_path: Path
) -> None:
    tenant = "ab_retry"
    world = sandbox.work_world(tenant)
    faults.too_many_requests = 2  # 429 + Retry-After: 1
    faults.server_errors = 2
    faults.path_contains = "/workitemsbatch"
    mark = len(sandbox.requests)
    load(sandbox, db_url, tenant, tmp_path, config={"project": world.projects[0].key})

    served = [r for r in sandbox.requests_since(mark) if r.fault]
    assert [(r.status, r.fault) for r in served] == [
        (429, "too_many_requests"), (429, "too_many_requests"), (500, "server_errors"), (500, "server_errors"),
    ]  # fmt: skip
    assert count(db_url, tenant, "work_items") == len(list(world.items_of(world.projects[0].key)))


def test_expired_token_fails_clearly_and_the_next_run_resumes(
    sandbox: SandboxServer, faults: SandboxFaults, db_url: str, tmp_path: Path
) -> None:
    tenant = "ab_expired"
    world = sandbox.work_world(tenant)
    load(sandbox, db_url, tenant, tmp_path)
    change = sandbox.advance_work_items(tenant, 2)
    faults.expired_token = 1
    faults.path_contains = "/workitemsbatch"
    with pytest.raises(AzureBoardsAuthError) as caught:
        load(sandbox, db_url, tenant, tmp_path)
    message = str(caught.value)
    assert "has expired (401 Access Denied: The Personal Access Token used has expired.)" in message
    assert "pulse source add/update" in message and token_for("azure", tenant) not in message
    # Nothing lost, nothing half-written: the new item is not there yet, the old rows are.
    assert count(db_url, tenant, "work_items") == len(world.items) - 1
    info = load(sandbox, db_url, tenant, tmp_path)
    assert row_counts(info)["work_items"] == len(change.changed_item_ids) + len(change.new_item_ids)
    assert table_counts(db_url, tenant) == expected_counts(world)


def test_malformed_work_item_is_quarantined_and_every_good_row_loads(
    sandbox: SandboxServer, faults: SandboxFaults, db_url: str, tmp_path: Path
) -> None:
    tenant = "ab_bad"
    world = sandbox.work_world(tenant)
    broken = world.malformed_target()
    faults.malformed_work_item = True
    before = datetime.now(UTC)
    load(sandbox, db_url, tenant, tmp_path)

    schema = dataset_name(tenant)
    rows = query(db_url, f'select resource, item_key, reason, payload, seen_at from "{schema}".quarantine')
    assert len(rows) == 1
    resource, key, reason, payload, seen_at = rows[0]
    assert (
        resource == "work_items"
        and key == f"{tenant}-eng/{broken.project_key} id={broken.id} rev={len(moments(broken))}"
    )
    assert "missing required field 'fields.System.WorkItemType'" in reason
    assert "'fields.System.ChangedDate' is not an ISO 8601 timestamp: 'sometime last week'" in reason
    assert payload["id"] == broken.id and seen_at >= before
    expected = expected_counts(world)
    assert count(db_url, tenant, "work_items") == expected["work_items"] - 1
    assert count(db_url, tenant, "work_item_revisions") == expected["work_item_revisions"]
    assert query(db_url, f'select count(*) from "{schema}".work_items where id = %s', broken.id)[0][0] == 0


def test_a_load_killed_midway_loses_and_duplicates_nothing(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ab_killed"
    world = sandbox.work_world(tenant)
    source = azure_boards_source(base_url(sandbox, tenant), creds(tenant), {}, page_size=50, retry_policy=FAST)
    seen = {"rows": 0}

    def die_after_two_pages(row: Any) -> Any:
        seen["rows"] += 1
        if seen["rows"] > 100:
            raise RuntimeError("the worker was killed")
        return row

    source.resources["work_items"].add_map(die_after_two_pages)
    with pytest.raises(Exception, match="the worker was killed"):
        load(sandbox, db_url, tenant, tmp_path, source=source)
    assert count(db_url, tenant, "work_items") == 0

    load(sandbox, db_url, tenant, tmp_path)
    assert table_counts(db_url, tenant) == expected_counts(world)
    assert key_checksum(db_url, tenant) == world_checksum(world)
    again = load(sandbox, db_url, tenant, tmp_path)  # nothing new: merge keeps one row per key
    assert row_counts(again).get("work_items", 0) == 0
    assert key_checksum(db_url, tenant) == world_checksum(world)


def test_backfill_window_loads_only_its_changes_and_keeps_the_cursor(
    sandbox: SandboxServer, db_url: str, tmp_path: Path
) -> None:
    tenant = "ab_window"
    world = sandbox.work_world(tenant)
    start, end = world.now - timedelta(days=30), world.now - timedelta(days=10)
    info = load(sandbox, db_url, tenant, tmp_path, start_date=start, end_date=end)
    in_window = [item for item in world.items if start <= moments(item)[-1] < end]
    revisions = sum(1 for item in world.items for moment in moments(item) if start <= moment < end)
    assert in_window and len(in_window) < len(world.items)
    counts = row_counts(info)
    assert counts["work_items"] == len(in_window)
    assert counts["work_item_revisions"] == revisions
    changed = query(db_url, f'select min(changed_at), max(changed_at) from "{dataset_name(tenant)}".work_items')[0]
    assert start <= changed[0] and changed[1] < end
    # The window did not move the cursor: a plain run loads everything.
    info = load(sandbox, db_url, tenant, tmp_path)
    assert table_counts(db_url, tenant) == expected_counts(world)


def test_wiql_over_the_cap_is_split_until_every_slice_fits(sandbox: SandboxServer, db_url: str, tmp_path: Path) -> None:
    tenant = "ab_cap"
    world = sandbox.work_world(tenant)
    project = world.projects[0].key
    sandbox.azure_wiql_cap = 25  # type: ignore[attr-defined]
    try:
        mark = len(sandbox.requests)
        load(sandbox, db_url, tenant, tmp_path, config={"project": project})
    finally:
        del sandbox.azure_wiql_cap  # type: ignore[attr-defined]
    wiql = [r for r in sandbox.requests_since(mark) if r.tenant == tenant and "/_apis/wit/wiql" in r.path]
    assert (
        any(r.status == 400 for r in wiql)
        and sum(r.status == 200 for r in wiql) >= len(list(world.items_of(project))) // 25
    )
    assert count(db_url, tenant, "work_items") == len(list(world.items_of(project)))


def test_discovery_maps_every_canonical_field(sandbox: SandboxServer) -> None:
    tenant = "ab_discover"
    candidates = discover_fields(base_url(sandbox, tenant), creds(tenant), {})
    proposal = propose(candidates)
    assert proposal.missing == []
    assert set(proposal.mappings) == set(CANONICAL_NAMES)
    ids = {name: mapping.field_id for name, mapping in proposal.mappings.items()}
    assert ids == {
        "story_points": "Microsoft.VSTS.Scheduling.StoryPoints",
        "sprint": "System.IterationPath",
        "dmt_ac_quality": "Custom.AcceptanceCriteriaQuality",
        "dmt_unit_test_task": "Custom.UnitTestTask",
        "dmt_unit_test_status": "Custom.UnitTestingStatus",
        "dmt_coverage_pct": "Custom.CodeCoverage",
        "dmt_pr_links": "Custom.PRLinks",
        "dmt_ci_evidence": "Custom.CIEvidenceLink",
        "dmt_reviewer_signoff": "Custom.ReviewerDMTSignoff",
        "dmt_exception_reason": "Custom.DMTExceptionReason",
        "dmt_exception_approver": "Custom.DMTExceptionApprover",
        "dmt_exception_expires": "Custom.DMTExceptionExpires",
        "dmt_exception": "Custom.DMTException",
    }
    assert proposal.mappings["story_points"].method == "schema" and proposal.mappings["sprint"].method == "schema"
    by_id = {c.id: c for c in candidates}
    assert by_id["Custom.UnitTestingStatus"].type == "option"
    assert by_id["Custom.UnitTestingStatus"].options == ("Not Started", "In Progress", "Done", "Exception Approved")
    assert by_id["Custom.DMTExceptionApprover"].type == "user" and by_id["Custom.CodeCoverage"].type == "number"


def test_check_connection_says_what_failed(sandbox: SandboxServer) -> None:
    tenant = "ab_check"
    world = sandbox.work_world(tenant)
    url = base_url(sandbox, tenant)
    project = world.projects[0].key
    ok, message = check_connection(url, creds(tenant), {"project": project})
    assert ok, message
    sprints = len([s for s in world.sprints if s.project_key == project])
    assert message == (
        f"ok: org '{tenant}-eng' at {url}: project '{project}' (team '{project} Team', {sprints} iterations, "
        "work items readable)"
    )
    ok, message = check_connection(url, creds(tenant), {})
    assert ok and all(f"project '{p.key}'" in message for p in world.projects)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused = probe.getsockname()[1]
    ok, message = check_connection(f"http://127.0.0.1:{unused}/azure/{tenant}-eng", creds(tenant), {}, timeout=2)
    assert not ok and "is unreachable" in message and "check the base URL" in message

    ok, message = check_connection(url, {"token": "ado_live_SECRET_123"}, {})
    assert not ok and "was rejected (401 VS30063" in message and "SECRET" not in message

    ok, message = check_connection(url, creds(tenant, noperm=True), {"project": project})
    assert not ok and "may not read" in message and "TF400813" in message and "Work Items (Read)" in message

    ok, message = check_connection(url, creds(tenant), {"project": "NOPE"})
    assert not ok and message.startswith("project not found in org") and "TF200016" in message and "NOPE" in message

    ok, message = check_connection(url, creds(tenant), {"project": project, "team": "Ghosts"})
    assert not ok and message.startswith("team not found") and "Ghosts" in message

    ok, message = check_connection(url, {}, {})
    assert not ok and "has no personal access token" in message
