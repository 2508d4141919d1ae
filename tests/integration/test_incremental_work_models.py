"""The per-item models built incrementally (dbt_project/macros/incremental.sql) give exactly what
a rebuild of every item gives, while rebuilding only the items that changed.

Three tenants (Jira, ClickUp, Azure Boards) are loaded from the sandbox and built; the sandbox
moves a day on (items change status, new items appear), the tenants are loaded again
(incremental loads) and the models are built again incrementally with a later as_of. The rows
must equal those of a rebuild of every item (var rebuild) with the same as_of, and the
incremental run must have rebuilt only the reloaded items, the still-blocked ones, their
families and the items of sprints whose window moved. The tools' change histories are staged
per item the same way: only items with raw rows loaded since are restaged, and a tenant whose
lookups (here Jira's account emails) changed is restaged whole. Done-Means-Tested compliance is
evaluated per item too, and the flags re-evaluate the items whose compliance was rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from connectors.azure_boards import azure_boards_source, load_azure_boards
from connectors.clickup import clickup_source, load_clickup
from connectors.jira import jira_source, load_jira
from connectors.sandbox import SandboxServer
from connectors.sandbox.tools import token_for
from pulse import control
from pulse.db import admin_engine
from pulse.dbt import DBT_PROJECT_DIR
from pulse.settings import Settings
from tests.conftest import run_dbt
from tests.incremental_builds import build_at, drop_index, index_definitions, plan_without_scans, query, tenant_rows

WORLD_DAY = datetime(2026, 12, 2, tzinfo=UTC)
JIRA, CLICKUP, AZURE = "inc_a", "inc_b", "inc_f"
TENANTS = (JIRA, CLICKUP, AZURE)
STAGED = ("stg_jira__work_item_changes", "stg_clickup__work_item_changes", "stg_azure_boards__work_item_changes")
#: staged per Azure Boards item too (what stg_azure_boards__users reads of the items)
AZURE_IDENTITIES = "stg_azure_boards__work_item_identities"
MODELS = (*STAGED, AZURE_IDENTITIES, "int_work_item_changes__unioned", "int_work_item_status_history",
          "int_sprint_scope", "int_work_item_blocked_periods", "int_work_items_unified",
          "fct_work_item_compliance")  # fmt: skip
SELECTION = "+int_work_items_unified +int_sprint_scope +fct_compliance_flags +stg_azure_boards__users"
#: fct_compliance_flags' flag of each failed rule of fct_work_item_compliance
RULE_FLAGS = {
    "pr_link": "missing_pr_link", "unit_testing": "unit_testing_not_done", "ac_quality": "ac_quality",
    "unit_test_task": "unit_test_task_missing", "coverage": "coverage_below_threshold",
    "ci_evidence": "ci_evidence_missing", "reviewer_signoff": "reviewer_signoff_missing",
}  # fmt: skip
RAW_ITEMS = {
    JIRA: "raw_jira__inc_a.issues",
    CLICKUP: "raw_clickup__inc_b.tasks",
    AZURE: "raw_azure_boards__inc_f.work_items",
}


@dataclass
class Builds:
    first_watermark: dict[str, datetime]
    reloaded: dict[str, int]
    items: dict[str, int]
    open_flags: set[tuple[str, str, str]]
    failed_rules: set[tuple[str, str, str]]
    incremental: dict[str, set[tuple[Any, ...]]]
    rebuilt: dict[str, set[tuple[Any, ...]]]
    changed_rows: dict[str, int]


def schema_of(model: str) -> str:
    return "staging" if model.startswith("stg_") else "marts" if model.startswith("fct_") else "intermediate"


def rows_of(db_url: str, model: str) -> set[tuple[Any, ...]]:
    return tenant_rows(db_url, f"{schema_of(model)}.{model}", TENANTS)


def open_flags(db_url: str) -> set[tuple[str, str, str]]:
    """(tenant, item, flag type) of every open flag of a failed rule."""
    return set(query(
        db_url,
        "select tenant_id, work_item_uid, flag_type from marts.fct_compliance_flags "
        "where tenant_id = any(%s) and is_open and flag_type <> 'exception_expiring'",
        list(TENANTS),
    ))  # fmt: skip


def failed_rules(db_url: str) -> set[tuple[str, str, str]]:
    """(tenant, item, flag type) of every failed rule of fct_work_item_compliance."""
    rows = query(
        db_url,
        "select tenant_id, work_item_uid, failed_rules from marts.fct_work_item_compliance "
        "where tenant_id = any(%s) and failed_rules <> ''",
        list(TENANTS),
    )
    return {(tenant, uid, RULE_FLAGS[rule]) for tenant, uid, rules in rows for rule in rules.split(", ")}


def build(as_of: datetime, **extra: object) -> None:
    build_at(SELECTION, as_of, cautious=True, **extra)


def load_all(server: SandboxServer, db_url: str, pipelines: str) -> None:
    load_jira(
        JIRA,
        db_url,
        jira_source(f"{server.url}/jira", {"email": "pulse@inc.example", "token": token_for("jira", JIRA)}, {}),
        pipelines_dir=pipelines,
    )
    load_clickup(
        CLICKUP, db_url, clickup_source(f"{server.url}/clickup", {"token": token_for("clickup", CLICKUP)}, {}),
        pipelines_dir=pipelines,
    )  # fmt: skip
    load_azure_boards(
        AZURE,
        db_url,
        azure_boards_source(f"{server.url}/azure/{AZURE}-eng", {"token": token_for("azure", AZURE)}, {}),
        pipelines_dir=pipelines,
    )


@pytest.fixture(scope="module")
def builds(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    server = SandboxServer(now=WORLD_DAY, seed=23, scale=0.3, work_scale=0.6, history_days=84).start()
    pipelines = str(tmp_path_factory.mktemp("incremental"))
    try:
        with admin_engine(settings).begin() as conn:
            for tenant in TENANTS:
                control.add_tenant(conn, tenant, f"Incremental {tenant}", actor="test")
        load_all(server, db_url, pipelines)
        # The models may already hold other test modules' tenants: these are built whole, as
        # tenants the models have no row of.
        build(WORLD_DAY + timedelta(hours=6))
        first_watermark = dict(
            query(
                db_url,
                "select tenant_id, max(source_loaded_at) from intermediate.int_work_items_unified "
                "where tenant_id = any(%s) group by tenant_id",
                list(TENANTS),
            )
        )
        before = {model: rows_of(db_url, model) for model in MODELS}

        server.advance(days=1, touches_per_tenant=8)
        load_all(server, db_url, pipelines)
        reloaded = {
            tenant: query(
                db_url,
                f"select count(*) from {table} where to_timestamp(_dlt_load_id::double precision) > %s",
                first_watermark[tenant],
            )[0][0]
            for tenant, table in RAW_ITEMS.items()
        }
        items = {tenant: query(db_url, f"select count(*) from {table}")[0][0] for tenant, table in RAW_ITEMS.items()}

        as_of = WORLD_DAY + timedelta(days=2)
        build(as_of)
        incremental = {model: rows_of(db_url, model) for model in MODELS}
        # what the flags say right after the incremental build (the rebuild below would mend it)
        flags_then = open_flags(db_url)
        failures_then = failed_rules(db_url)
        changed_rows = {model: len(incremental[model] - before[model]) for model in MODELS}
        build(as_of, rebuild=True)
        rebuilt = {model: rows_of(db_url, model) for model in MODELS}
        yield Builds(first_watermark, reloaded, items, flags_then, failures_then, incremental, rebuilt, changed_rows)
    finally:
        server.stop()


@pytest.mark.parametrize("model", MODELS)
def test_an_incremental_build_equals_a_rebuild_of_every_item(builds: Builds, model: str) -> None:
    assert builds.incremental[model], f"{model} has no rows of the test tenants"
    assert builds.incremental[model] == builds.rebuilt[model]


def test_the_day_reloaded_a_few_items_of_each_tenant(builds: Builds) -> None:
    for tenant in TENANTS:
        # advance(8 touches) moves up to 8 open items and creates one, per tenant (a connector
        # may land a few more again: its incremental window overlaps the last load's).
        assert builds.items[tenant] >= 100
        assert 1 <= builds.reloaded[tenant] <= builds.items[tenant] / 10, (tenant, builds.reloaded)


def test_only_the_reloaded_items_got_a_newer_watermark(builds: Builds, db_url: str) -> None:
    for tenant in TENANTS:
        newer = query(
            db_url,
            "select count(*) from intermediate.int_work_items_unified where tenant_id = %s and source_loaded_at > %s",
            tenant,
            builds.first_watermark[tenant],
        )[0][0]
        assert newer == builds.reloaded[tenant]


def test_the_incremental_build_changed_few_rows(builds: Builds) -> None:
    # Changed rows: the reloaded items' (new statuses), the still-blocked items' and the rows
    # of running sprints (their end is as_of). A rebuild of everything would touch them all,
    # but their values stay: most rows are untouched.
    for model in MODELS:
        assert builds.changed_rows[model] < len(builds.incremental[model]) / 4, (model, builds.changed_rows)
    assert builds.changed_rows["int_work_item_status_history"] >= sum(builds.reloaded.values())


def test_staging_restaged_only_the_items_loaded_since(builds: Builds, db_url: str) -> None:
    for model, tenant in zip(STAGED, TENANTS, strict=True):
        restaged = {
            row[0]
            for row in query(
                db_url,
                f"select distinct work_item_id from staging.{model} where tenant_id = %s and loaded_at > %s",
                tenant,
                builds.first_watermark[tenant],
            )
        }
        reloaded = {
            row[0]
            for row in query(
                db_url,
                "select work_item_id from intermediate.int_work_items__unioned where tenant_id = %s and loaded_at > %s",
                tenant,
                builds.first_watermark[tenant],
            )
        }
        assert restaged, model
        assert restaged <= reloaded, (model, restaged - reloaded)


def test_a_changed_lookup_restages_the_tenant(builds: Builds, db_url: str) -> None:
    """A Jira account's email changes (users are lookups of the changelog): every change that
    account authored shows the new email after an incremental build."""
    account, email = query(
        db_url,
        "select changes.author_account_id, users.email from raw_jira__inc_a.issue_changes as changes "
        "inner join raw_jira__inc_a.users as users on users.account_id = changes.author_account_id "
        "where changes.author_email is null and changes.canonical_field = 'status' and users.email is not null "
        "limit 1",
    )[0]
    authored = query(
        db_url,
        "select count(*) from raw_jira__inc_a.issue_changes where author_account_id = %s "
        "and author_email is null and canonical_field = 'status'",
        account,
    )[0][0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update raw_jira__inc_a.users set email = 'renamed@inc.example' where account_id = %s", (account,))
    try:
        build(WORLD_DAY + timedelta(days=2))
        staged = dict(
            query(
                db_url,
                "select author_email, count(*) from staging.stg_jira__work_item_changes "
                "where tenant_id = %s and field = 'status' and author_email in (lower(%s), 'renamed@inc.example') "
                "group by author_email",
                JIRA,
                email,
            )
        )
        assert staged == {"renamed@inc.example": authored}
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("update raw_jira__inc_a.users set email = %s where account_id = %s", (email, account))


def test_compliance_reevaluated_only_the_reloaded_items(builds: Builds, db_url: str) -> None:
    reevaluated = {
        tenant: query(
            db_url,
            "select count(*) from marts.fct_work_item_compliance where tenant_id = %s and source_loaded_at > %s",
            tenant,
            builds.first_watermark[tenant],
        )[0][0]
        for tenant in TENANTS
    }
    assert sum(reevaluated.values()) >= 1
    for tenant in TENANTS:
        assert reevaluated[tenant] <= builds.reloaded[tenant], (tenant, reevaluated)


def test_the_flags_followed_every_item_compliance_rebuilt(builds: Builds) -> None:
    """Right after the incremental build, the open flags are exactly the failed rules of now
    (no hand resolutions here): no item whose compliance changed was left out of the flags'
    batch, and no flag of an item that passes now stayed open."""
    assert len(builds.failed_rules) > 100
    assert builds.open_flags == builds.failed_rules


def test_a_changed_project_threshold_reevaluates_its_items(builds: Builds, settings: Settings, db_url: str) -> None:
    project, items = query(
        db_url,
        "select project_key, count(*) from marts.fct_work_item_compliance where tenant_id = %s "
        "and not has_valid_exception and dmt_coverage_pct between 81 and 99 "
        "group by project_key order by 2 desc limit 1",
        JIRA,
    )[0]
    with admin_engine(settings).begin() as conn:
        control.add_project(conn, JIRA, project, project, actor="test", dmt_coverage_threshold=100)
    try:
        build(WORLD_DAY + timedelta(days=2))
        thresholds = query(
            db_url,
            "select coverage_threshold, count(*) from marts.fct_work_item_compliance "
            "where tenant_id = %s and project_key = %s group by coverage_threshold",
            JIRA,
            project,
        )
        assert thresholds == [(100, thresholds[0][1])]
        flagged = query(
            db_url,
            "select count(*) from marts.fct_compliance_flags as flags "
            "inner join marts.fct_work_item_compliance as compliance using (tenant_id, work_item_uid) "
            "where flags.tenant_id = %s and compliance.project_key = %s "
            "and flags.flag_type = 'coverage_below_threshold' and flags.is_open "
            "and not compliance.has_valid_exception and compliance.dmt_coverage_pct between 81 and 99 "
            "and flags.message like %s",
            JIRA,
            project,
            "%under the project's 100%",
        )[0][0]
        # each of these items covered 81-99%: over the default 80, under 100 now
        assert flagged == items
    finally:
        with admin_engine(settings).begin() as conn:
            conn.exec_driver_sql("delete from control.projects where tenant_id = %s and key = %s", (JIRA, project))
    build(WORLD_DAY + timedelta(days=2))
    assert query(
        db_url,
        "select distinct coverage_threshold from marts.fct_work_item_compliance "
        "where tenant_id = %s and project_key = %s",
        JIRA,
        project,
    ) == [(80,)]
    assert open_flags(db_url) == failed_rules(db_url)


#: The lookup indexes ensure_indexes keeps (macros/enforced_tests.sql): int_sprint_scope's of a
#: running sprint's items (macros/incremental.sql, sprint_scope_also), partial; and
#: int_pull_request_work_items' of the items a pull request names by key, on an expression.
LOOKUP_INDEXES = {
    "intermediate.int_work_items__unioned": [
        "(tenant_id, lower(work_item_key))",
        "(tenant_id, sprint_uid) WHERE (sprint_uid IS NOT NULL)",
    ],
    "intermediate.int_work_item_changes__unioned": [
        "(tenant_id, sprint_from_uid) WHERE (sprint_from_uid IS NOT NULL)",
        "(tenant_id, sprint_to_uid) WHERE (sprint_to_uid IS NOT NULL)",
    ],
}


def test_a_lookup_index_dropped_comes_back_once_at_the_next_build(builds: Builds, db_url: str) -> None:
    for relation, indexes in LOOKUP_INDEXES.items():
        assert [index for index in index_definitions(db_url, relation) if index in indexes] == indexes
    # as on a table built before the index was added: an incremental build adds it, and only it
    # (every index of int_work_items__unioned's list: an expression index is recognized too)
    dropped = {"intermediate.int_work_items__unioned": LOOKUP_INDEXES["intermediate.int_work_items__unioned"]}
    dropped["intermediate.int_work_item_changes__unioned"] = LOOKUP_INDEXES[
        "intermediate.int_work_item_changes__unioned"
    ][:1]
    for relation, indexes in dropped.items():
        for index in indexes:
            drop_index(db_url, relation, index)
    before = {relation: index_definitions(db_url, relation) for relation in LOOKUP_INDEXES}
    for _ in range(2):  # the second build finds every index there and adds none
        run_dbt(["run", "--select", "int_work_items__unioned int_work_item_changes__unioned"])
        for relation, indexes in dropped.items():
            assert index_definitions(db_url, relation) == sorted([*before[relation], *indexes])


#: The raw tables the staged work items and change histories read per item, and their item id
#: columns: each tenant's copy is indexed on it (and on the dlt load id) by the staging tables'
#: pre-hooks (macros/incremental.sql, index_raw_load_ids), so a batch reads its items' rows only.
RAW_ITEM_IDS = {
    f"raw_jira__{JIRA}": {"issues": "id", "issue_changes": "issue_id"},
    f"raw_clickup__{CLICKUP}": {"tasks": "id", "task_status_history": "task_id", "sprint_memberships": "task_id"},
    f"raw_azure_boards__{AZURE}": {"work_items": "id", "work_item_revisions": "id"},
}
#: the raw tables whose jsonb arrays a staged model looks up by value (the tasks linking to a
#: task loaded since: clickup_item_loads), with the inverted index that answers it
RAW_ELEMENT_INDEXES = {f"raw_clickup__{CLICKUP}": {"tasks": "gin (linked_task_ids)"}}


def test_each_raw_table_read_per_item_is_indexed_on_its_item_id(builds: Builds, db_url: str) -> None:
    for schema, tables in RAW_ITEM_IDS.items():
        for table, column in tables.items():
            elements = [RAW_ELEMENT_INDEXES[schema][table]] if table in RAW_ELEMENT_INDEXES.get(schema, {}) else []
            assert sorted(
                index for index in index_definitions(db_url, f"{schema}.{table}") if not index.startswith("UNIQUE")
            ) == sorted([f"({column})", "(_dlt_load_id)", *elements]), f"{schema}.{table}"
    # The model's own batch read, as dbt compiles it for an incremental build (the raw column cast
    # to its own type, which is no cast: and_source_item_in_batch), can be answered by that index
    # for a batch of two items (a copy this small is cheaper to scan, so the planner is told not
    # to, to show the predicate matches the index).
    model = "stg_azure_boards__work_item_changes"
    run_dbt(["compile", "--select", model])
    compiled = (DBT_PROJECT_DIR / "target" / "compiled" / "pulse" / "models" / "staging" / "azure_boards"
                / f"{model}.sql").read_text()  # fmt: skip
    revisions = compiled.split("revisions as (", 1)[1].split("\n),\n", 1)[0]
    assert "changed_source_items" in revisions, revisions  # compiled as an incremental build
    with psycopg.connect(db_url) as conn:
        conn.execute(f"create temporary table changed_source_items__{model} (tenant_id text, work_item_id text)")
        conn.execute(f"insert into changed_source_items__{model} values (%s, '1'), (%s, '2')", [AZURE, AZURE])
        conn.execute("set local enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(f"explain {revisions}"))
    assert "work_item_revisions_id" in plan, plan


def test_a_task_linking_to_a_reloaded_task_is_restaged(builds: Builds, db_url: str) -> None:
    # A ClickUp task K links to a task L (a bug's cause is read from the task it links to). L
    # alone is loaded again (its raw row gets a newer load id); nothing else changes. The
    # incremental build restages K with L's load as its loaded_at, as a rebuild does. The read
    # goes from L to K through the inverted index on the links (clickup_item_loads), which the
    # planner, told not to scan, uses for the read of the tasks linking to L.
    as_of = WORLD_DAY + timedelta(days=2)
    tasks = f"raw_clickup__{CLICKUP}.tasks"
    [(linking, linked)] = query(
        db_url,
        f"select linking.id, link.task_id from {tasks} as linking "
        "cross join lateral jsonb_array_elements_text(linking.linked_task_ids) as link(task_id) "
        f"inner join {tasks} as linked on linked.id = link.task_id "
        "order by linking.id, link.task_id limit 1",
    )
    [(newest,)] = query(db_url, f"select max(_dlt_load_id::double precision) from {tasks}")
    load_id = f"{newest + 3600:.6f}"  # after every load and membership stamp of the test
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"update {tasks} set _dlt_load_id = %s where id = %s", [load_id, linked])
    plan = plan_without_scans(db_url, f"select id from {tasks} where linked_task_ids::jsonb ? %s", linked)
    assert "tasks_linked_task_ids" in plan, plan
    build(as_of)
    staged = dict(query(
        db_url,
        "select work_item_id, loaded_at from staging.stg_clickup__work_items "
        "where tenant_id = %s and work_item_id = any(%s)",
        CLICKUP, [linking, linked],
    ))  # fmt: skip
    [(loaded_at,)] = query(db_url, "select to_timestamp(%s::double precision)", load_id)
    assert staged == {linking: loaded_at, linked: loaded_at}
    incremental = tenant_rows(db_url, "staging.stg_clickup__work_items", [CLICKUP])
    build(as_of, rebuild=True)
    assert incremental == tenant_rows(db_url, "staging.stg_clickup__work_items", [CLICKUP])


def test_a_build_in_full_expands_the_links(builds: Builds) -> None:
    # A build in full reads every tenant's tasks at once. There `?` could only filter a join on
    # the tenant (every pair of a tenant's tasks: the model took 115 s at 50 tenants x 2 years,
    # against 8-26 s), so that build expands each task's links and joins them to the tasks by id
    # (clickup_item_loads); only an incremental build, tenant by tenant, probes the index.
    run_dbt(["compile", "--select", "stg_clickup__work_items", "--full-refresh"])
    compiled = (DBT_PROJECT_DIR / "target" / "compiled" / "pulse" / "models" / "staging" / "clickup"
                / "stg_clickup__work_items.sql").read_text()  # fmt: skip
    assert "jsonb_array_elements_text(linking.linked_task_ids::jsonb)" in compiled, compiled
    assert "? linked.id" not in compiled, compiled


def test_a_redated_or_unstarted_sprint_has_its_items_rebuilt(builds: Builds, db_url: str) -> None:
    # Two closed sprints of the Jira tenant with items: one re-dated (its start two days
    # earlier), one no longer started (its start removed). Nothing else changed, so only the
    # window check (macros/incremental.sql, sprint_scope_also) can bring their items into the
    # batch: the re-dated sprint's rows are measured from the new start, and the unstarted
    # sprint's rows are gone, as in a rebuild.
    as_of = WORLD_DAY + timedelta(days=2)
    redated, unstarted = (
        sprint
        for (sprint,) in query(
            db_url,
            "select scope.sprint_uid from intermediate.int_sprint_scope as scope "
            "inner join intermediate.int_sprints__unioned as sprints using (tenant_id, sprint_uid) "
            "where scope.tenant_id = %s and sprints.completed_at is not null "
            "group by scope.sprint_uid order by count(*) desc limit 2",
            JIRA,
        )
    )
    starts = dict(query(
        db_url,
        "select sprint_uid, start_at from intermediate.int_sprints__unioned "
        "where tenant_id = %s and sprint_uid = any(%s)",
        JIRA, [redated, unstarted],
    ))  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"update raw_jira__{JIRA}.sprints set start_at = start_at - interval '2 days' "
                     "where 'jira:' || id::text = %s", [redated])  # fmt: skip
        conn.execute(f"update raw_jira__{JIRA}.sprints set start_at = null where 'jira:' || id::text = %s", [unstarted])
    build(as_of)
    incremental = rows_of(db_url, "int_sprint_scope")
    build(as_of, rebuild=True)
    assert incremental == rows_of(db_url, "int_sprint_scope")
    windows = dict(query(db_url, "select sprint_uid, min(scope_start_at) from intermediate.int_sprint_scope "
                                 "where tenant_id = %s and sprint_uid = any(%s) group by sprint_uid",
                         JIRA, [redated, unstarted]))  # fmt: skip
    assert windows == {redated: starts[redated] - timedelta(days=2)}


def test_a_tenant_whose_raw_data_is_gone_loses_its_rows(builds: Builds, settings: Settings, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("drop schema raw_clickup__inc_b cascade")
    build(WORLD_DAY + timedelta(days=2))
    for model in MODELS:
        left = query(db_url, f"select tenant_id, count(*) from {schema_of(model)}.{model} where tenant_id = any(%s) "
                             "group by tenant_id order by tenant_id", list(TENANTS))  # fmt: skip
        # a tool's staging table holds its own tenant only
        tool_tenant = {**dict(zip(STAGED, TENANTS, strict=True)), AZURE_IDENTITIES: AZURE}
        kept = {JIRA, AZURE} & ({tool_tenant[model]} if model in tool_tenant else set(TENANTS))
        assert set(dict(left)) == kept, model
