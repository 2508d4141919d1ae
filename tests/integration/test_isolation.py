"""Row-level security and the append-only audit log, enforced by PostgreSQL itself."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from pulse.db import admin_engine, reader_url

TENANTS = ("iso_a", "iso_b")


@pytest.fixture()
def two_tenants_of_prs(marts_built: None) -> Iterator[None]:
    """Three PRs of iso_a and two of iso_b in the mart, inserted as the admin role."""
    engine = admin_engine()
    rows = [("iso_a", n) for n in range(3)] + [("iso_b", n) for n in range(2)]
    with engine.begin() as conn:
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
    yield
    with engine.begin() as conn:
        conn.execute(text("delete from marts.fct_pull_requests where tenant_id in ('iso_a', 'iso_b')"))


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
