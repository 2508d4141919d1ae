"""Control plane through the `pulse` CLI, against the test session's PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from pulse.cli import main
from pulse.db import admin_engine


def pulse(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"PULSE_ACTOR": "cli:tester", **(env or {})}, input=input)
    return result.exit_code, result.output


@pytest.mark.usefixtures("settings")
def test_tenant_add_list_deactivate_with_audit() -> None:
    assert pulse("tenant", "add", "cp_acme", "--name", "CP Acme") == (0, "added tenant cp_acme (CP Acme)\n")
    code, out = pulse("tenant", "list")
    assert code == 0
    assert "cp_acme\tCP Acme\tactive\tUTC" in out.splitlines()
    assert pulse("tenant", "deactivate", "cp_acme") == (0, "deactivated tenant cp_acme\n")
    assert "cp_acme\tCP Acme\tinactive\tUTC" in pulse("tenant", "list")[1].splitlines()
    with admin_engine().connect() as conn:
        audit = conn.execute(
            text(
                "select actor, action, old_values, new_values from control.audit_log "
                "where tenant_id = 'cp_acme' order by audit_id"
            )
        ).all()
    assert [(a.actor, a.action) for a in audit] == [("cli:tester", "tenant.add"), ("cli:tester", "tenant.deactivate")]
    assert audit[1].old_values == {"is_active": True}
    assert audit[1].new_values == {"is_active": False}


@pytest.mark.usefixtures("settings")
def test_bad_tenant_input_gets_a_clear_error_and_changes_nothing() -> None:
    code, out = pulse("tenant", "add", "Bad-Slug", "--name", "x")
    assert code == 1
    assert "Tenant slug 'Bad-Slug' is invalid" in out
    pulse("tenant", "add", "cp_dupe", "--name", "Dupe")
    code, out = pulse("tenant", "add", "cp_dupe", "--name", "Dupe again")
    assert code == 1
    assert "already exists" in out
    code, out = pulse("tenant", "deactivate", "cp_nobody")
    assert (code, "No tenant 'cp_nobody'" in out) == (1, True)
    with admin_engine().connect() as conn:
        names = conn.execute(text("select name from control.tenants where slug = 'cp_dupe'")).scalars().all()
    assert names == ["Dupe"]


@pytest.mark.usefixtures("settings")
def test_source_credentials_are_encrypted_and_never_shown() -> None:
    pulse("tenant", "add", "cp_src", "--name", "Sources Inc")
    code, out = pulse(
        "source",
        "add",
        "--tenant",
        "cp_src",
        "--type",
        "github",
        "--name",
        "gh",
        "--base-url",
        "http://127.0.0.1:1/",
        "--token-env",
        "CP_TOKEN",
        "--config",
        "org=src-eng",
        "--config",
        "repositories=api,web",
        env={"CP_TOKEN": "ghp_topsecret_value"},
    )
    assert code == 0, out
    code, listing = pulse("source", "list", "--tenant", "cp_src")
    assert code == 0
    assert "ghp_topsecret_value" not in listing
    assert '{"org": "src-eng", "repositories": ["api", "web"]}' in listing
    with admin_engine().connect() as conn:
        stored = conn.execute(
            text("select credentials_encrypted, base_url from control.sources where tenant_id = 'cp_src'")
        ).one()
        audit_text = json.dumps(
            conn.execute(
                text("select new_values from control.audit_log where tenant_id = 'cp_src' and action = 'source.add'")
            ).scalar_one()
        )
        everything = conn.execute(text("select string_agg(t::text, ' ') from control.audit_log t")).scalar_one()
    assert "ghp_topsecret_value" not in stored.credentials_encrypted
    assert stored.base_url == "http://127.0.0.1:1"
    assert '"credentials": "********"' in audit_text
    assert "ghp_topsecret_value" not in everything


@pytest.mark.usefixtures("settings")
def test_source_test_names_an_unreachable_host() -> None:
    pulse("tenant", "add", "cp_unreach", "--name", "Unreachable")
    code, out = pulse(
        "source",
        "add",
        "--tenant",
        "cp_unreach",
        "--type",
        "github",
        "--name",
        "gh",
        "--base-url",
        "http://127.0.0.1:9",
        "--token-env",
        "T",
        "--config",
        "org=x",
        env={"T": "ghs_sandbox_x"},
    )
    source_id = out.split()[2].rstrip(":")
    code, out = pulse("source", "test", source_id)
    assert code == 1
    assert "unreachable" in out.lower()
    assert "ghs_sandbox_x" not in out


@pytest.mark.usefixtures("settings")
def test_users_and_grants_follow_their_rules() -> None:
    pulse("tenant", "add", "cp_people", "--name", "People")
    pulse("team", "add", "cp_people", "core", "--name", "Core")
    assert (
        pulse(
            "user",
            "add",
            "Lead@People.example",
            "--name",
            "Lee",
            "--role",
            "team_lead",
            "--tenant",
            "cp_people",
            "--team",
            "core",
        )[0]
        == 0
    )
    code, out = pulse("user", "add", "x@people.example", "--name", "X", "--role", "org_admin")
    assert code == 1
    assert "scoped to a tenant" in out
    with admin_engine().connect() as conn:
        grants = conn.execute(
            text("select email, role, tenant_id from control.user_grants('lead@people.example')")
        ).all()
    assert [tuple(g) for g in grants] == [("lead@people.example", "team_lead", "cp_people")]


@pytest.mark.usefixtures("settings")
def test_tokens_are_shown_once_stored_hashed_and_revocable() -> None:
    from pulse.tokens import resolve_token

    pulse("tenant", "add", "cp_tok", "--name", "Tokens")
    pulse("user", "add", "agent@tok.example", "--name", "Agent", "--role", "member", "--tenant", "cp_tok")
    code, out = pulse(
        "token", "create", "--tenant", "cp_tok", "--kind", "agent", "--user", "agent@tok.example", "--name", "laptop"
    )
    assert code == 0, out
    token = out.strip()
    assert token.startswith("pulse_agent_")
    code, out = pulse("token", "create", "--tenant", "cp_tok", "--kind", "agent", "--name", "nobody")
    assert (code, "acts for one user" in out) == (1, True)
    with admin_engine().connect() as conn:
        scope = resolve_token(conn, token, "agent")
        assert scope is not None and (scope.tenant_id, scope.user_email) == ("cp_tok", "agent@tok.example")
        assert resolve_token(conn, token, "ingest") is None  # a token is good for its own kind only
        stored = conn.execute(text("select string_agg(t::text, ' ') from control.api_tokens t")).scalar_one()
        audit = conn.execute(text("select string_agg(t::text, ' ') from control.audit_log t")).scalar_one()
        token_id = scope.token_id
    assert token not in stored and token not in audit
    assert pulse("token", "revoke", str(token_id)) == (0, f"revoked token {token_id}\n")
    with admin_engine().connect() as conn:
        assert resolve_token(conn, token, "agent") is None
