"""Row-level security and the append-only audit log, enforced by PostgreSQL itself."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from pulse.db import admin_engine, database_url, reader_url
from pulse.dbt import DBT_PROJECT_DIR
from tests.conftest import run_dbt

TENANTS = ("iso_a", "iso_b")


def insert_prs() -> None:
    """Three PRs of iso_a and two of iso_b in the mart, inserted as the admin role."""
    rows = [("iso_a", n) for n in range(3)] + [("iso_b", n) for n in range(2)]
    with admin_engine().begin() as conn:
        for tenant, number in rows:
            conn.execute(
                text(
                    "insert into marts.fct_pull_requests (pull_request_id, tenant_id, source_type, repository, "
                    "pull_request_number, state, opened_at, review_count, reviewer_count, is_merged, "
                    "is_merged_without_review) values (:id, :t, 'github', :t || '/repo', :n, 'open', now(), 0, 0, "
                    "false, false)"
                ),
                {"id": f"github:{tenant}-{number}", "t": tenant, "n": number},
            )


def delete_prs() -> None:
    with admin_engine().begin() as conn:
        conn.execute(text("delete from marts.fct_pull_requests where tenant_id in ('iso_a', 'iso_b')"))


@pytest.fixture()
def two_tenants_of_prs(marts_built: None) -> Iterator[None]:
    insert_prs()
    yield
    delete_prs()


def reader_rows(declared: str | None) -> list[str]:
    """Tenant ids of the PRs the reader role sees after declaring ``declared`` (or nothing)."""
    with psycopg.connect(reader_url()) as conn, conn.transaction():
        if declared is not None:
            conn.execute("select set_config('pulse.tenant_ids', %s, true)", (declared,))
        rows = conn.execute(
            "select tenant_id from marts.fct_pull_requests where tenant_id in ('iso_a', 'iso_b') order by 1"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.usefixtures("two_tenants_of_prs")
def test_reader_sees_only_the_declared_tenant() -> None:
    assert reader_rows("iso_a") == ["iso_a", "iso_a", "iso_a"]
    assert reader_rows("iso_b") == ["iso_b", "iso_b"]


@pytest.mark.usefixtures("two_tenants_of_prs")
def test_reader_sees_nothing_without_a_declared_tenant() -> None:
    assert reader_rows(None) == []
    assert reader_rows("") == []


@pytest.mark.usefixtures("two_tenants_of_prs")
def test_declaration_is_transaction_local() -> None:
    with psycopg.connect(reader_url()) as conn:
        with conn.transaction():
            conn.execute("select set_config('pulse.tenant_ids', 'iso_a', true)")
            inside = conn.execute("select count(*) from marts.fct_pull_requests where tenant_id = 'iso_a'").fetchone()
        after = conn.execute("select count(*) from marts.fct_pull_requests where tenant_id = 'iso_a'").fetchone()
    assert inside == (3,)
    assert after == (0,)


def test_reader_role_cannot_bypass_rls_or_write(marts_built: None) -> None:
    with psycopg.connect(reader_url()) as conn:
        bypass, superuser = conn.execute(
            "select rolbypassrls, rolsuper from pg_roles where rolname = current_user"
        ).fetchone() or (None, None)
        assert (bypass, superuser) == (False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into marts.fct_pull_requests (pull_request_id, tenant_id, opened_at, state) "
                "values ('x', 'iso_a', now(), 'open')"
            )


def test_reader_cannot_read_credentials_or_the_audit_log(settings: object) -> None:
    with psycopg.connect(reader_url()) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select credentials_encrypted from control.sources")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from control.audit_log")


def test_audit_log_refuses_update_delete_and_truncate(settings: object) -> None:
    engine = admin_engine()
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into control.audit_log (actor, action, entity_type, entity_id) "
                "values ('test', 'test.append', 'test', 'one')"
            )
        )
    for statement in (
        "update control.audit_log set actor = 'someone else' where action = 'test.append'",
        "delete from control.audit_log where action = 'test.append'",
        "truncate control.audit_log",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        remaining = (
            conn.execute(text("select actor from control.audit_log where action = 'test.append'")).scalars().all()
        )
    assert remaining == ["test"]


#: The policy every mart carries (dbt_project/macros/tenancy.sql, enable_tenant_rls).
POLICY = ("tenant_isolation", "r", ["pulse_reader"], "control.tenant_visible(tenant_id)")


def mart_security() -> dict[str, tuple[bool, tuple[str, str, list[str], str] | None, str | None, bool, int | None]]:
    """Per table of the marts schema: (row-level security on, its policy as (name, command,
    roles, using), the policy's comment, pulse_reader may select, the policy's oid)."""
    with psycopg.connect(database_url()) as conn:
        rows = conn.execute(
            "select mart.relname, mart.relrowsecurity, policy.polname, policy.polcmd::text,"
            " array(select rolname from pg_roles where oid = any(policy.polroles) order by 1),"
            " pg_get_expr(policy.polqual, policy.polrelid), obj_description(policy.oid, 'pg_policy'),"
            " has_table_privilege('pulse_reader', mart.oid, 'select'), policy.oid::bigint"
            " from pg_class as mart left join pg_policy as policy"
            " on policy.polrelid = mart.oid and policy.polname = 'tenant_isolation'"
            " where mart.relnamespace = 'marts'::regnamespace and mart.relkind in ('r', 'p')"
        ).fetchall()
    return {
        name: (secured, (policy, command, roles, using) if policy else None, comment, readable, oid)
        for name, secured, policy, command, roles, using, comment, readable, oid in rows
    }


def test_every_mart_has_row_level_security_for_the_reader(marts_built: None) -> None:
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    marts = {
        node["alias"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["schema"] == "marts"
    }
    security = mart_security()
    assert len(marts) >= 18 and marts <= set(security), marts - set(security)
    for mart in marts:
        secured, policy, comment, readable, _ = security[mart]
        assert (secured, policy, readable) == (True, POLICY, True), mart
        assert comment is not None and comment.startswith("pulse rls v1, md5 "), mart


def test_a_mart_s_build_does_not_wait_for_an_open_reader(marts_built: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Enabling row-level security and writing the policy lock the mart exclusively: a build that
    # did them every time waited for every open reader (and held back every reader after it). The
    # build finds them in place and writes its rows only, so a reader's open transaction on the
    # mart does not hold it back (lock_timeout makes a wait an error here).
    before = mart_security()["fct_pull_requests"]
    with psycopg.connect(reader_url()) as reader:
        reader.execute("select set_config('pulse.tenant_ids', 'iso_a', true)")
        reader.execute("select count(*) from marts.fct_pull_requests").fetchone()  # holds ACCESS SHARE
        monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=5s")
        output = run_dbt(["run", "--select", "fct_pull_requests"], timeout=600)
        assert reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert "1 of 1 OK" in output
    after = mart_security()["fct_pull_requests"]
    assert after == before  # the same policy: not dropped and created again


#: Ways a mart's row-level security can be lost or loosened outside a build, each on its own.
BREAKAGES = {
    "policy for every row": "alter policy tenant_isolation on marts.fct_pull_requests using (true)",
    "policy for every role": "alter policy tenant_isolation on marts.fct_pull_requests to public",
    "security off": "alter table marts.fct_pull_requests disable row level security",
    "no grant": "revoke select on marts.fct_pull_requests from pulse_reader",
    "policy gone": "drop policy tenant_isolation on marts.fct_pull_requests",
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_mart_whose_security_was_changed_gets_it_back_in_its_next_build(marts_built: None, breakage: str) -> None:
    intact = mart_security()["fct_pull_requests"]
    assert intact[:4] == (True, POLICY, intact[2], True)
    try:
        with psycopg.connect(database_url(), autocommit=True) as conn:
            conn.execute(BREAKAGES[breakage])
        assert mart_security()["fct_pull_requests"][:4] != intact[:4]
        run_dbt(["run", "--select", "fct_pull_requests"], timeout=600)
        secured, policy, comment, readable, _ = mart_security()["fct_pull_requests"]
        assert (secured, policy, readable) == (True, POLICY, True)
        assert comment is not None and comment.startswith("pulse rls v1, md5 ")
        insert_prs()
        assert reader_rows("iso_b") == ["iso_b", "iso_b"]
        assert reader_rows(None) == []
    finally:
        delete_prs()
        with psycopg.connect(database_url(), autocommit=True) as conn:  # as the build wrote it
            conn.execute("alter table marts.fct_pull_requests enable row level security")
            conn.execute("drop policy if exists tenant_isolation on marts.fct_pull_requests")
            conn.execute(
                "create policy tenant_isolation on marts.fct_pull_requests for select to pulse_reader"
                " using (control.tenant_visible(tenant_id))"
            )
            conn.execute("grant select on marts.fct_pull_requests to pulse_reader")
            comment = sql.SQL("comment on policy tenant_isolation on marts.fct_pull_requests is {}")
            conn.execute(comment.format(intact[2]))
