"""The data tests of a view marked test_new_loads read the rows loaded since they last passed
(dbt_project/macros/tested_loads.sql), and still find every bad row a full read would.

Two tenants are loaded from a sandbox's agent platform by the real connector. Rows are then
written into their raw runs tables by hand, as a faulty load would: a row carries the load id
that says when it was loaded, so a row "loaded" before a test last passed is one the test has
read, and a row after it one it has not. stg_agent_platform__runs is the view: its column rules
(unique_per_tenant and not_null of agent_run_id, not_null of tenant_id, accepted_values of
status) are one test, column_rules (dbt_project/tests/generic/column_rules.sql), which reads only
new loads. The tests run with --store-failures, so each broken rule can be read back: its rule,
column, number of rows and first example.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.agent_platform import agent_platform_source, load_agent_platform
from connectors.sandbox import SandboxServer
from connectors.sandbox.agent_platform import token_for
from pulse import control
from pulse.db import admin_engine
from pulse.dbt import DBT_PROJECT_DIR, dbt_env
from pulse.settings import Settings
from tests.conftest import run_dbt
from tests.incremental_builds import plan_without_scans, query

TENANTS = ("tl_one", "tl_two")
VIEW = "stg_agent_platform__runs"
RULES_TEST = "column_rules_stg_agent_platform__runs"


def dbt_test(tenant: str | None = None) -> tuple[int, str]:
    """`dbt test` of the view's data tests (optionally one tenant's partition), keeping the rows a
    failing test returns: (exit code, output)."""
    env = {**os.environ, **dbt_env()}
    if tenant:
        env["PULSE_DBT_TENANT_ID"] = tenant
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "test", "--select", VIEW, "--exclude", "test_type:unit",
         "--store-failures", "--project-dir", str(DBT_PROJECT_DIR)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode, done.stdout


def broken_rules(db_url: str) -> set[tuple[str, str, int, str]]:
    """The rules the last failing run of the column rules found broken: (rule, column, rows,
    first example)."""
    rows = query(db_url, f"select rule, column_name, failing_rows, example from dbt_test__audit.{RULES_TEST}")
    return {(rule, column, int(count), example) for rule, column, count, example in rows}


def marks(db_url: str) -> dict[tuple[str, str], datetime]:
    """control.tested_loads of the view's tests and this module's tenants: (test, tenant) → loaded_at."""
    rows = query(
        db_url,
        "select test_id, tenant_id, loaded_at from control.tested_loads where tenant_id = any(%s)",
        list(TENANTS),
    )
    return {(test_id.split(".")[2], tenant): at for test_id, tenant, at in rows}


def newest_load(db_url: str, tenant: str) -> datetime:
    sql = f"select to_timestamp(max(_dlt_load_id)::double precision) from raw_agent_platform__{tenant}.runs"
    at: datetime = query(db_url, sql)[0][0]
    return at


def add_run(db_url: str, tenant: str, *, load_id: str, **values: Any) -> None:
    """A copy of one of the tenant's raw runs with `values` changed, written under `load_id`."""
    assignments = ", ".join(f"{column} = %({column})s" for column in values)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"create temporary table added as select * from raw_agent_platform__{tenant}.runs limit 1")
        conn.execute(
            f"update added set {assignments}, _dlt_load_id = %(load_id)s, _dlt_id = md5(random()::text)",
            {**values, "load_id": load_id},
        )
        conn.execute(f"insert into raw_agent_platform__{tenant}.runs select * from added")


def remove_runs(db_url: str, tenant: str, run_id: str | None) -> None:
    """Remove the tenant's raw runs of this id (of no id: None)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"delete from raw_agent_platform__{tenant}.runs where run_id is not distinct from %s", (run_id,))


def failing(output: str) -> set[str]:
    """The names of the tests dbt reported as failing."""
    return set(re.findall(r"Failure in test (\S+) ", output))


@pytest.fixture(scope="module")
def loaded(settings: Settings, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    server = SandboxServer(now=datetime(2026, 12, 2, tzinfo=UTC), seed=41, scale=0.2, history_days=20).start()
    pipelines = str(tmp_path_factory.mktemp("tested_loads"))
    try:
        with admin_engine(settings).begin() as conn:
            for tenant in TENANTS:
                control.add_tenant(conn, tenant, f"Tested loads {tenant}", actor="test")
        for tenant in TENANTS:
            load_agent_platform(
                tenant, db_url, agent_platform_source(server.url, token_for(tenant)), pipelines_dir=pipelines
            )
        run_dbt(["run", "--select", VIEW])
        yield
    finally:
        server.stop()
        with psycopg.connect(db_url, autocommit=True) as conn:
            for tenant in TENANTS:
                conn.execute(f"drop schema if exists raw_agent_platform__{tenant} cascade")
            conn.execute(f"drop table if exists dbt_test__audit.{RULES_TEST}")
        run_dbt(["run", "--select", VIEW])


def test_a_passing_test_keeps_each_tenants_newest_load(loaded: None, db_url: str) -> None:
    # the state of a test the project no longer has (a test replaced by column_rules, say)
    gone = "test.pulse.not_null_stg_agent_platform__runs_status.0123456789"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into control.tested_loads (test_id, tenant_id, version, loaded_at, tested_at)"
            " values (%s, 'tl_one', 'v', now(), now())",
            (gone,),
        )
    code, output = dbt_test()
    assert code == 0, output
    # ... goes at the end of the run; the project's own tests' states stay
    assert query(db_url, "select count(*) from control.tested_loads where test_id = %s", gone)[0][0] == 0
    kept = marks(db_url)
    # the view's one test of its rules, for both tenants, each at that tenant's newest raw load
    assert set(kept) == {(RULES_TEST, tenant) for tenant in TENANTS}
    for (_, tenant), at in kept.items():
        assert at == newest_load(db_url, tenant)
    # the invocation's candidates are gone
    assert query(db_url, "select count(*) from control.tested_load_candidates")[0][0] == 0


def test_a_bad_row_loaded_since_fails_and_holds_the_mark(loaded: None, db_url: str) -> None:
    assert dbt_test()[0] == 0
    before = marks(db_url)
    # a row the test has read already (loaded before its mark) is not read again: a bad status
    # written under the tenant's oldest load id goes unseen
    (oldest,) = query(db_url, "select min(_dlt_load_id) from raw_agent_platform__tl_one.runs")[0]
    add_run(db_url, "tl_one", load_id=oldest, run_id="tl-old-bad", status="exploded")
    try:
        code, output = dbt_test()
        assert code == 0, output
        # a bad row in a new load is read, and fails the test: one row, and which rule it broke
        add_run(db_url, "tl_one", load_id=f"{time.time():.6f}", run_id="tl-new-bad", status="exploded")
        code, output = dbt_test()
        assert code == 1 and failing(output) == {RULES_TEST}, output
        assert "Got 1 result" in output, output
        assert broken_rules(db_url) == {("accepted_values", "status", 1, "tl_one: exploded")}
        # the failing test keeps its marks (it reads the same rows next time)
        assert marks(db_url) == before
        # still failing while the row is there; passing once the load is mended
        assert dbt_test()[0] == 1
        remove_runs(db_url, "tl_one", "tl-new-bad")
        code, output = dbt_test()
        assert code == 0, output
        assert marks(db_url)[(RULES_TEST, "tl_one")] == newest_load(db_url, "tl_one")
        # a changed view or test (another version) reads every row again: the old bad row is
        # found, with a run without an id written since (a new row, so read in any case; dlt
        # declares the key not null, which a faulty load would not have kept)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("alter table raw_agent_platform__tl_one.runs alter column run_id drop not null")
        add_run(db_url, "tl_one", load_id=f"{time.time():.6f}", run_id=None)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "update control.tested_loads set version = 'before' where test_id like %s and tenant_id = 'tl_one'",
                (f"%.{RULES_TEST}.%",),
            )
        code, output = dbt_test()
        assert code == 1 and failing(output) == {RULES_TEST}, output
        assert "Got 2 results" in output, output
        assert broken_rules(db_url) == {
            ("accepted_values", "status", 1, "tl_one: exploded"),
            ("not_null", "agent_run_id", 1, "tl_one"),
        }
    finally:
        remove_runs(db_url, "tl_one", "tl-old-bad")
        remove_runs(db_url, "tl_one", "tl-new-bad")
        remove_runs(db_url, "tl_one", None)
    assert dbt_test()[0] == 0


def test_a_new_row_repeating_an_old_key_fails_uniqueness(loaded: None, db_url: str) -> None:
    assert dbt_test()[0] == 0
    (old_run,) = query(db_url, "select min(run_id) from raw_agent_platform__tl_two.runs")[0]
    add_run(db_url, "tl_two", load_id=f"{time.time():.6f}", run_id=old_run)
    try:
        code, output = dbt_test()
        assert code == 1 and failing(output) == {RULES_TEST}, output
        # the new row and the old one it repeats (read by its key, not by its load)
        assert broken_rules(db_url) == {("unique_per_tenant", "agent_run_id", 2, f"tl_two: agent_platform:{old_run}")}
        # the same key in the other tenant is no duplicate
        remove_runs(db_url, "tl_two", old_run)
        add_run(db_url, "tl_one", load_id=f"{time.time():.6f}", run_id=old_run)
        code, output = dbt_test()
        assert code == 0, output
    finally:
        remove_runs(db_url, "tl_one", old_run)
    # the removed original comes back with the tenant's next load; here, by hand
    add_run(db_url, "tl_two", load_id=f"{time.time():.6f}", run_id=old_run)
    assert dbt_test()[0] == 0


def test_the_rows_sharing_a_new_rows_key_are_read_by_index(loaded: None, db_url: str) -> None:
    # The view's pre-hook indexed each raw copy on the key the view computes (index_unique_keys),
    # so the uniqueness rule reads the rows holding a new row's key one probe per key, not every
    # run of every tenant (tested_loads_rows). Were the view's key written otherwise than the
    # index, the read would scan.
    (run_id,) = query(db_url, "select min(run_id) from raw_agent_platform__tl_two.runs")[0]
    sql = f"select * from staging.{VIEW} where tenant_id = 'tl_two' and agent_run_id = %s"
    plan = plan_without_scans(db_url, sql, f"agent_platform:{run_id}")
    assert "Seq Scan on runs" not in plan and "runs_agent_run_key" in plan, plan


def test_a_partition_run_reads_and_marks_its_tenant_only(loaded: None, db_url: str) -> None:
    assert dbt_test()[0] == 0
    before = marks(db_url)
    add_run(db_url, "tl_two", load_id=f"{time.time():.6f}", run_id="tl-two-bad", status="exploded")
    try:
        # tl_one's partition does not read tl_two's rows, and moves only tl_one's mark
        add_run(db_url, "tl_one", load_id=f"{time.time():.6f}", run_id="tl-one-new")
        code, output = dbt_test("tl_one")
        assert code == 0, output
        after = marks(db_url)
        assert after[(RULES_TEST, "tl_one")] == newest_load(db_url, "tl_one") > before[(RULES_TEST, "tl_one")]
        assert after[(RULES_TEST, "tl_two")] == before[(RULES_TEST, "tl_two")]
        code, output = dbt_test("tl_two")
        assert code == 1 and failing(output) == {RULES_TEST}, output
        assert broken_rules(db_url) == {("accepted_values", "status", 1, "tl_two: exploded")}
    finally:
        remove_runs(db_url, "tl_two", "tl-two-bad")
        remove_runs(db_url, "tl_one", "tl-one-new")
