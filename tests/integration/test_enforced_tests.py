"""A table's not_null / accepted_values / unique_per_tenant tests are constraints of the table
(dbt_project/macros/enforced_tests.sql): the database refuses a bad row when it is written, and
the test reads no row while its constraint is there — and reads them all, and fails, when it is
not.

stg_jira__work_items is built with whatever Jira tenants the test database holds (none is
needed: its constraints are made on an empty table too)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from pulse.dbt import DBT_PROJECT_DIR, dbt_env
from tests.conftest import run_dbt
from tests.incremental_builds import index_definitions

MODEL = "staging.stg_jira__work_items"


def dbt_test(selection: str) -> tuple[int, str]:
    """`dbt test` of one model's data tests: (exit code, output)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "test", "--select", selection, "--exclude", "test_type:unit",
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
    code, output = dbt_test("stg_jira__work_items")
    assert code == 1
    failed = [line for line in output.splitlines() if "FAIL 1" in line]
    assert len(failed) == 1 and "not_null_stg_jira__work_items_status" in failed[0], output
