"""A table's not_null / accepted_values / values_between / holds_for_every_row / unique_per_tenant /
unique / unique_combination tests are constraints of the table
(dbt_project/macros/enforced_tests.sql): the database refuses a bad row when it is written, and
the test reads no row while its constraint is there — and reads them all, and fails, when it is
not.

stg_jira__work_items is built with whatever Jira tenants the test database holds (none is
needed: its constraints are made on an empty table too).

The builds Pulse runs (Dagster's steps, the benchmark) do not run these tests as dbt nodes: they
ask the catalog once for all of them (pulse/enforced_tests.py), which must then agree with the
macro about which tests have a constraint, and find each one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from pulse.dbt import DBT_PROJECT_DIR, dbt_env, manifest_path
from pulse.enforced_tests import EnforcedTest, enforced_tests, verify
from tests.conftest import run_dbt
from tests.incremental_builds import index_definitions

MODEL = "staging.stg_jira__work_items"
MODEL_ID = "model.pulse.stg_jira__work_items"

#: A row of fct_sprints that keeps both of its row rules and every bound.
SPRINT = {
    "tenant_id": "enforced", "sprint_uid": "jira:1", "say_do_ratio": 1, "share_reviewed": 50, "completed_stories": 1,
    "completed_bugs": 0, "completed_tasks": 0, "throughput": 1, "committed_points_completed": 3,
    "committed_points": 3, "dmt_compliant_items": 0, "dmt_assessed_items": 1,
}  # fmt: skip


def insert_sprint(conn: psycopg.Connection, **changes: object) -> None:
    row = {**SPRINT, **changes}
    conn.execute(
        f"insert into marts.fct_sprints ({', '.join(row)}) values ({', '.join(['%s'] * len(row))})", list(row.values())
    )


def project_enforced_tests() -> list[EnforcedTest]:
    return enforced_tests(json.loads(manifest_path().read_text()))


def dbt_test(*selection: str) -> tuple[int, str]:
    """`dbt test` of these models' (or tests') data tests: (exit code, output)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "test", "--select", *selection, "--exclude", "test_type:unit",
         "--indirect-selection", "cautious", "--project-dir", str(DBT_PROJECT_DIR)],
        env={**os.environ, **dbt_env()}, capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode, done.stdout


@pytest.fixture(scope="module")
def built(db_url: str) -> Iterator[None]:
    run_dbt(["run", "--select", "+stg_jira__work_items", "--full-refresh"])
    yield
    run_dbt(["run", "--select", "stg_jira__work_items", "--full-refresh"])


def catalog(db_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, (MODEL,)).fetchall()


def analyze_count(db_url: str) -> int:
    """How many times the model's table was analyzed by hand (autovacuum's are counted apart)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        (count,) = conn.execute(
            "select analyze_count from pg_stat_user_tables where relid = %s::regclass", (MODEL,)
        ).fetchone() or (0,)
    return int(count)


def analyze_statements(args: list[str]) -> list[str]:
    """Run dbt with its debug events on stdout (JSON); the statements it sent that analyze the model."""
    lines = run_dbt([*args, "--log-format", "json", "--log-level", "debug"]).splitlines()
    sent = [json.loads(line)["data"].get("sql", "") for line in lines if '"SQLQuery"' in line]
    assert sent, "dbt reported no statement: the check below could not fail"
    schema, table = MODEL.split(".")
    analyze = re.compile(rf'analyze "[^"]+"\."{schema}"\."{table}"')
    return [sql for sql in sent if analyze.search(sql)]


def test_a_model_rebuilt_whole_is_analyzed_at_once(built: None, db_url: str) -> None:
    """The post-hook analyze_built_in_full() (macros/incremental.sql): a full refresh analyzes the
    table it rebuilt (the table may be empty here: analyze_count says that it ran); an
    incremental build does not analyze again."""
    # a full refresh makes a new table (its counts start at 0)
    assert len(analyze_statements(["run", "--select", "stg_jira__work_items", "--full-refresh"])) == 1
    # a backend reports its statistics as it exits, just after dbt's connection closes
    deadline = time.monotonic() + 10
    while analyze_count(db_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert analyze_count(db_url) == 1
    # the statements dbt sent: none analyzes the table (a count reported late could not say so)
    assert analyze_statements(["run", "--select", "stg_jira__work_items"]) == []


def test_each_tested_column_is_constrained(built: None, db_url: str) -> None:
    not_null = {
        row[0]
        for row in catalog(
            db_url, "select attname from pg_attribute where attrelid = %s::regclass and attnotnull and attnum > 0"
        )
    }
    # the columns _jira__models.yml tests with not_null (nothing else is made NOT NULL)
    assert not_null == {
        "work_item_id", "tenant_id", "work_item_key", "project_key", "item_type", "status", "status_category",
        "created_at", "updated_at", "dmt_exception",
    }  # fmt: skip
    checks = dict(
        catalog(
            db_url,
            "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass "
            "and contype = 'c' and conname like 'accepted__status_category__%%'",
        )
    )
    assert list(checks.values()) == [
        "CHECK ((status_category = ANY (ARRAY['todo'::text, 'in_progress'::text, 'done'::text])))"
    ]
    unique = catalog(
        db_url,
        "select pg_get_indexdef(indexrelid) from pg_index where indrelid = %s::regclass and indisunique",
    )
    assert sorted(row[0].split(" USING btree ")[1] for row in unique) == [
        "(tenant_id, work_item_id)",
        "(tenant_id, work_item_key)",
    ]
    # the item index the model declares is that unique one (not a second index on its columns)
    assert index_definitions(db_url, MODEL) == [
        "(tenant_id, loaded_at)",
        "UNIQUE (tenant_id, work_item_id)",
        "UNIQUE (tenant_id, work_item_key)",
    ]


def test_the_database_refuses_a_row_that_breaks_a_test(built: None, db_url: str) -> None:
    row = {
        "tenant_id": "enforced", "work_item_id": "1", "work_item_key": "ENF-1", "project_key": "ENF",
        "item_type": "story", "status": "Done", "status_category": "done",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC), "updated_at": datetime(2026, 1, 2, tzinfo=UTC),
        "dmt_exception": False,
    }  # fmt: skip
    columns = ", ".join(row)
    values = ", ".join(f"%({name})s" for name in row)
    with psycopg.connect(db_url) as conn:
        with pytest.raises(psycopg.errors.NotNullViolation, match="status"):
            conn.execute(f"insert into {MODEL} ({columns}) values ({values})", {**row, "status": None})
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="accepted__status_category"):
            conn.execute(f"insert into {MODEL} ({columns}) values ({values})", {**row, "status_category": "later"})
        conn.rollback()
        conn.execute(f"insert into {MODEL} ({columns}) values ({values})", row)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"insert into {MODEL} ({columns}) values ({values})", {**row, "work_item_key": "ENF-2"})
        conn.rollback()


def test_without_its_constraint_a_test_reads_the_rows_and_fails(built: None, db_url: str) -> None:
    code, output = dbt_test("stg_jira__work_items")
    assert code == 0, output
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"alter table {MODEL} alter column status drop not null")
        conn.execute(
            f"insert into {MODEL} (tenant_id, work_item_id, work_item_key, project_key, item_type, status, "
            "status_category, created_at, updated_at, dmt_exception) "
            "values ('enforced', '1', 'ENF-1', 'ENF', 'story', null, 'done', now(), now(), false)"
        )
    try:
        code, output = dbt_test("stg_jira__work_items")
        assert code == 1
        failed = [line for line in output.splitlines() if "FAIL 1" in line]
        assert len(failed) == 1 and "not_null_stg_jira__work_items_status" in failed[0], output
    finally:  # the table as it was, for the tests after this one
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"delete from {MODEL} where tenant_id = 'enforced'")
            conn.execute(f"alter table {MODEL} alter column status set not null")


def test_every_test_the_catalog_answers_has_its_constraint_after_a_build(marts_built: None, db_url: str) -> None:
    """The macro and pulse/enforced_tests.py agree: each test the builds leave to the catalog
    is one the post-hook made a constraint of, on every table of the project (built here, so that
    no earlier test's leftovers count; marts_built has loaded the seeds)."""
    run_dbt(["run"])
    tests = project_enforced_tests()
    with psycopg.connect(db_url) as conn:
        verdicts = verify(conn, tests)

    assert len(verdicts) == len(tests) > 100
    assert [verdict.message for verdict in verdicts if not verdict.passed] == []
    assert {verdict.test.kind for verdict in verdicts} == {
        "not_null", "accepted_values", "values_between", "holds_for_every_row", "unique_per_tenant", "unique",
        "unique_combination",
    }  # fmt: skip


def test_the_catalog_fails_exactly_the_tests_whose_constraint_is_gone(built: None, db_url: str) -> None:
    tests = [test for test in project_enforced_tests() if test.model_id == MODEL_ID]
    # the ten not_null columns above, the four accepted_values, the two unique keys
    assert (
        sorted(test.kind for test in tests) == ["accepted_values"] * 4 + ["not_null"] * 10 + ["unique_per_tenant"] * 2
    )
    with psycopg.connect(db_url) as conn:
        assert [verdict.test.name for verdict in verify(conn, tests) if not verdict.passed] == []
        [[check]] = catalog(
            db_url,
            "select conname from pg_constraint where conrelid = %s::regclass "
            "and conname like 'accepted__status_category__%%'",
        )
        [[index]] = catalog(
            db_url,
            "select indexrelid::regclass::text from pg_index where indrelid = %s::regclass "
            "and pg_get_indexdef(indexrelid) like '%%(tenant_id, work_item_key)'",
        )
        conn.execute(f"alter table {MODEL} alter column status drop not null")
        conn.execute(f"alter table {MODEL} drop constraint {check}")
        conn.execute(f"drop index {index}")
        failed = [verdict for verdict in verify(conn, tests) if not verdict.passed]
        conn.rollback()

    assert sorted(verdict.test.name for verdict in failed) == [
        "accepted_values_stg_jira__work_items_status_category__todo__in_progress__done",
        "not_null_stg_jira__work_items_status",
        "unique_per_tenant_stg_jira__work_items_work_item_key",
    ]
    messages = sorted(verdict.message for verdict in failed)
    assert f"CHECK {check} on staging.stg_jira__work_items.status_category is missing" in messages[0]
    assert "NOT NULL on staging.stg_jira__work_items.status is missing" in messages[1]
    assert "a unique index on staging.stg_jira__work_items (tenant_id, work_item_key) is missing" in messages[2]
    assert all("dbt build --select stg_jira__work_items" in message for message in messages)


def test_a_mart_s_row_rules_and_composite_keys_are_constraints(marts_built: None, db_url: str) -> None:
    """fct_sprints' bounds and row rules are CHECKs; fct_agent_usage_daily's composite key holds
    two rows that differ only by nulls equal, as the test's group by does."""
    with psycopg.connect(db_url) as conn:
        checks = dict(
            conn.execute(
                "select conname, pg_get_constraintdef(oid) from pg_constraint "
                "where conrelid = 'marts.fct_sprints'::regclass and contype = 'c' order by conname"
            ).fetchall()
        )
        usage_index = conn.execute(
            "select pg_get_indexdef(indexrelid) from pg_index "
            "where indrelid = 'marts.fct_agent_usage_daily'::regclass and indisunique"
        ).fetchall()
    assert (
        checks["between__say_do_ratio__ae31e892f5"]
        == "CHECK (((say_do_ratio >= (0)::numeric) AND (say_do_ratio <= (1)::numeric)))"
    )
    assert checks["holds__completed_stories_completed_bugs_com__fedc15e296"] == (
        "CHECK (COALESCE((((completed_stories + completed_bugs) + completed_tasks) <= throughput), false))"
    )
    assert [row[0].split(" USING btree ")[1] for row in usage_index] == [
        "(tenant_id, usage_date, team_name, user_email, agent_type, model_name, status) NULLS NOT DISTINCT"
    ]

    usage = (
        "insert into marts.fct_agent_usage_daily (tenant_id, usage_date, team_name, user_email, agent_type, "
        "model_name, status) values ('enforced', '2026-01-01', null, null, 'claude-code', null, 'succeeded')"
    )
    with psycopg.connect(db_url) as conn:
        conn.execute(usage)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(usage)
        conn.rollback()
        # a sprint whose figures keep both row rules, then one breaking a bound, then a rule
        insert_sprint(conn)
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="between__say_do_ratio"):
            insert_sprint(conn, say_do_ratio=1.5)
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="holds__completed_stories"):
            insert_sprint(conn, throughput=0)
        conn.rollback()


def test_without_a_mart_s_constraints_the_catalog_fails_their_tests(marts_built: None, db_url: str) -> None:
    tests = [
        test for test in project_enforced_tests()
        if test.table in ("fct_sprints", "fct_developer_sprints", "dim_teams")
        and test.kind in ("values_between", "holds_for_every_row", "unique_combination", "unique")
    ]  # fmt: skip
    assert sorted((test.table, test.kind) for test in tests) == [
        ("dim_teams", "unique"),
        ("fct_developer_sprints", "holds_for_every_row"),
        ("fct_developer_sprints", "unique_combination"),
        ("fct_developer_sprints", "values_between"),
        ("fct_developer_sprints", "values_between"),
        ("fct_sprints", "holds_for_every_row"),
        ("fct_sprints", "holds_for_every_row"),
        ("fct_sprints", "values_between"),
        ("fct_sprints", "values_between"),
        ("fct_sprints", "values_between"),
    ]
    with psycopg.connect(db_url) as conn:
        assert [verdict.message for verdict in verify(conn, tests) if not verdict.passed] == []
        [[primary_key]] = conn.execute(
            "select conname from pg_constraint where conrelid = 'marts.fct_developer_sprints'::regclass "
            "and contype = 'p'"
        ).fetchall()
        [[team_index]] = conn.execute(
            "select indexrelid::regclass::text from pg_index where indrelid = 'marts.dim_teams'::regclass "
            "and indisunique and pg_get_indexdef(indexrelid) like '%%(team_id)'"
        ).fetchall()
        conn.execute("alter table marts.fct_sprints drop constraint between__say_do_ratio__ae31e892f5")
        conn.execute(
            "alter table marts.fct_sprints drop constraint holds__completed_stories_completed_bugs_com__fedc15e296"
        )
        conn.execute(f"alter table marts.fct_developer_sprints drop constraint {primary_key}")
        conn.execute(f"drop index {team_index}")
        failed = [verdict for verdict in verify(conn, tests) if not verdict.passed]
        # a plain unique index stands for the composite key while its columns are NOT NULL, and
        # no longer when one may be null (the test's group by holds nulls equal, the index apart)
        conn.execute("create unique index on marts.fct_developer_sprints (tenant_id, sprint_uid, person_id)")
        with_plain_index = [verdict.test.name for verdict in verify(conn, tests) if not verdict.passed]
        conn.execute("alter table marts.fct_developer_sprints alter column person_id drop not null")
        with_a_nullable_column = [verdict.test.name for verdict in verify(conn, tests) if not verdict.passed]
        conn.rollback()

    assert sorted(verdict.test.name for verdict in failed) == [
        "holds_for_every_row_fct_sprints_completed_stories_completed_bugs_completed_tasks_throughput",
        "unique_combination_fct_developer_sprints_tenant_id__sprint_uid__person_id",
        "unique_dim_teams_team_id",
        "values_between_fct_sprints_say_do_ratio__1__0",
    ]
    composite_key = "unique_combination_fct_developer_sprints_tenant_id__sprint_uid__person_id"
    assert composite_key not in with_plain_index and composite_key in with_a_nullable_column
    messages = {verdict.test.kind: verdict.message for verdict in failed}
    assert (
        "CHECK holds__completed_stories_completed_bugs_com__fedc15e296 on marts.fct_sprints "
        "(completed_stories + completed_bugs + completed_tasks <= throughput) is missing"
    ) in messages["holds_for_every_row"]
    assert (
        "a unique index on marts.fct_developer_sprints (tenant_id, sprint_uid, person_id), nulls not distinct "
        "is missing"
    ) in messages["unique_combination"]
    assert (
        "CHECK between__say_do_ratio__ae31e892f5 on marts.fct_sprints.say_do_ratio (between 0 and 1)"
        in (messages["values_between"])
    )


def test_without_its_constraint_a_mart_s_test_reads_the_rows_and_fails(marts_built: None, db_url: str) -> None:
    """The dbt tests of the new kinds read no row while their constraint is there, and read the
    rows, and fail, when it is gone; the next build restores the constraints and drops a CHECK
    whose test is gone."""
    tests = {
        (test.table, test.kind, test.column): test
        for test in project_enforced_tests()
        if test.table in ("fct_sprints", "fct_agent_usage_daily")
    }
    say_do = tests[("fct_sprints", "values_between", "say_do_ratio")]
    share_reviewed = tests[("fct_sprints", "values_between", "share_reviewed")]
    usage_key = tests[("fct_agent_usage_daily", "unique_combination", "")]
    with psycopg.connect(db_url) as conn:
        [[usage_index]] = conn.execute(
            "select indexrelid::regclass::text from pg_index "
            "where indrelid = 'marts.fct_agent_usage_daily'::regclass and indisunique"
        ).fetchall()
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("alter table marts.fct_sprints drop constraint between__say_do_ratio__ae31e892f5")
            conn.execute(
                "alter table marts.fct_sprints add constraint between__say_do_ratio__0000000000 "
                "check (say_do_ratio >= 0)"
            )
            conn.execute(f"drop index {usage_index}")
            insert_sprint(conn, say_do_ratio=1.5)  # one bound broken, the row rules kept
            for _ in range(2):
                conn.execute(
                    "insert into marts.fct_agent_usage_daily (tenant_id, usage_date, team_name, user_email, "
                    "agent_type, model_name, status) "
                    "values ('enforced', '2026-01-01', null, null, 'claude-code', null, 'succeeded')"
                )
        code, output = dbt_test(say_do.selector, share_reviewed.selector, usage_key.selector)
        assert code == 1, output
        failed = [line for line in output.splitlines() if "FAIL 1" in line]
        passed = [line for line in output.splitlines() if " PASS " in line]
        assert len(failed) == 2, output
        assert any(say_do.name in line for line in failed), output
        assert any(usage_key.name in line for line in failed), output
        # the bound whose CHECK is still there passes (the row keeps it: 50 %)
        assert len(passed) == 1 and share_reviewed.name in passed[0], output
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("delete from marts.fct_sprints where tenant_id = 'enforced'")
            conn.execute("delete from marts.fct_agent_usage_daily where tenant_id = 'enforced'")
        run_dbt(["run", "--select", "fct_sprints", "fct_agent_usage_daily"])

    with psycopg.connect(db_url) as conn:
        checks = {
            row[0]
            for row in conn.execute(
                "select conname from pg_constraint where conrelid = 'marts.fct_sprints'::regclass "
                "and conname like 'between__say_do_ratio__%%'"
            ).fetchall()
        }
        usage_indexes = conn.execute(
            "select pg_get_indexdef(indexrelid) from pg_index "
            "where indrelid = 'marts.fct_agent_usage_daily'::regclass and indisunique"
        ).fetchall()
    assert checks == {"between__say_do_ratio__ae31e892f5"}  # restored; the stale one dropped
    assert [row[0].split(" USING btree ")[1] for row in usage_indexes] == [
        "(tenant_id, usage_date, team_name, user_email, agent_type, model_name, status) NULLS NOT DISTINCT"
    ]
