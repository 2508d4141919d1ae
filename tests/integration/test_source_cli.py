"""`pulse source add|test|discover|map` and `pulse sync --source --from --to` on a Jira source.

The real CLI (click's runner over ``pulse.cli:main``) against the session's PostgreSQL and
sandbox. Expected values come from the sandbox: its Jira field ids (``connectors.sandbox.jira``)
and the tenant's planning world (``WorkItem.updated_at`` for the backfill window). Each test
uses a tenant of its own. The windowed sync also builds the dbt models downstream of the raw
Jira tables; the assertions here are on the raw tables, the Dagster run's ingest step and the
control plane (a failing dbt step is reported as a warning, not asserted on).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import dagster as dg
import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from connectors.sandbox import SandboxServer
from connectors.sandbox.jira import CALLER_TIME_ZONE, SPRINT_FIELD, STORY_POINTS_FIELD
from connectors.sandbox.jira.render import DMT_FIELDS
from connectors.sandbox.tools import token_for
from pulse import control
from pulse.cli import main
from pulse.db import admin_engine
from pulse.fieldmap import CANONICAL_NAMES, field_ids
from pulse.settings import Settings

#: What discovery must map on the sandbox's Jira site: every canonical name to its real field.
SANDBOX_FIELDS = {
    "story_points": STORY_POINTS_FIELD,
    "sprint": SPRINT_FIELD,
    **{f"dmt_{name}": spec[0] for name, spec in DMT_FIELDS.items()},
}
#: The site's "Story Points (old)": a text field that only an admin would pick.
OLD_STORY_POINTS = "customfield_10026"


def pulse(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"PULSE_ACTOR": "cli:tester"})
    return result.exit_code, result.output


def add_tenant(slug: str) -> None:
    assert pulse("tenant", "add", slug, "--name", slug.title()) == (0, f"added tenant {slug} ({slug.title()})\n")


def add_jira_source(sandbox: SandboxServer, tenant: str, name: str, email: str, token: str) -> int:
    code, out = pulse(
        "source", "add", "--tenant", tenant, "--type", "jira", "--name", name,
        "--base-url", f"{sandbox.url}/jira",
        "--credential", f"email={email}", "--credential", f"token={token}",
    )  # fmt: skip
    assert code == 0, out
    match = re.fullmatch(rf"added source (\d+): {name} \(jira\) for {tenant}\n", out)
    assert match is not None, out
    return int(match.group(1))


def stored_source(settings: Settings, source_id: int) -> tuple[control.Source, dict[str, Any]]:
    with admin_engine(settings).connect() as conn:
        return control.get_source(conn, source_id), control.source_credentials(conn, source_id, settings.secret_key)


def printed_mappings(out: str) -> dict[str, tuple[str, str]]:
    """``{canonical: (field id, method)}`` from `pulse source discover`'s table."""
    rows = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] in CANONICAL_NAMES:
            rows[parts[0]] = (parts[1], parts[3].removeprefix("(by ").removesuffix(")"))
    return rows


def test_a_jira_source_is_added_with_its_credentials_and_tested(settings: Settings, sandbox: SandboxServer) -> None:
    tenant = "cli_check"
    add_tenant(tenant)
    token = token_for("jira", tenant)
    source_id = add_jira_source(sandbox, tenant, "jira", "pulse.bot@cli-check.example", token)

    source, credentials = stored_source(settings, source_id)
    assert (source.type, source.base_url, source.config, source.field_mappings) == (
        "jira",
        f"{sandbox.url}/jira",
        {},
        {},
    )
    assert credentials == {"email": "pulse.bot@cli-check.example", "token": token}
    with admin_engine(settings).connect() as conn:
        encrypted: str = conn.execute(
            text("select credentials_encrypted from control.sources where source_id = :id"), {"id": source_id}
        ).scalar_one()
    assert token not in encrypted

    code, out = pulse("source", "test", str(source_id))
    projects = [project.key for project in sandbox.work_world(tenant).projects]
    assert (code, out) == (
        0,
        f"source {source_id} (jira, jira): ok: signed in to {sandbox.url}/jira as Pulse Bot "
        f"<pulse.bot@cli-check.example> (time zone {CALLER_TIME_ZONE}); {len(projects)} projects readable: "
        f"{', '.join(projects)}\n",
    )

    wrong = "atl_wrong_token_0000"
    bad_id = add_jira_source(sandbox, tenant, "jira_wrong_token", "pulse.bot@cli-check.example", wrong)
    code, out = pulse("source", "test", str(bad_id))
    assert code == 1
    assert out.startswith(f"Error: source {bad_id} (jira_wrong_token, jira): Jira at {sandbox.url}/jira rejected")
    assert "(401: " in out and "the API token is wrong, expired or revoked" in out
    assert wrong not in out

    no_permission = add_jira_source(
        sandbox, tenant, "jira_no_browse", "pulse.bot@cli-check.example", token_for("jira", tenant, noperm=True)
    )
    code, out = pulse("source", "test", str(no_permission))
    assert code == 1
    assert "the account can browse no project: it lacks the Browse projects permission" in out

    code, out = pulse(
        "source", "add", "--tenant", tenant, "--type", "jira", "--name", "twice", "--base-url", f"{sandbox.url}/jira",
        "--token-env", "CLI_JIRA_TOKEN", "--credential", f"token={token}",
    )  # fmt: skip
    assert code == 2 and "give the token once" in out
    with admin_engine(settings).connect() as conn:
        names: list[str] = list(
            conn.execute(text("select name from control.sources where tenant_id = :t"), {"t": tenant}).scalars()
        )
    assert sorted(names) == ["jira", "jira_no_browse", "jira_wrong_token"]


def test_a_rejected_token_is_replaced_with_source_update(settings: Settings, sandbox: SandboxServer) -> None:
    """The fix the connectors' error messages point to: `pulse source update`."""
    tenant = "cli_update"
    add_tenant(tenant)
    source_id = add_jira_source(sandbox, tenant, "jira", "bot@cli-update.example", "atl_wrong_token_0000")
    assert pulse("source", "test", str(source_id))[0] == 1

    project = sandbox.work_world(tenant).projects[0].key
    code, out = pulse(
        "source", "update", str(source_id), "--credential", f"token={token_for('jira', tenant)}",
        "--config", f"projects={project}", "--config", "page_size=50",
    )  # fmt: skip
    assert (code, out) == (0, f"updated source {source_id} (jira): config, credentials (token)\n")
    assert pulse("source", "test", str(source_id))[0] == 0
    code, out = pulse("source", "update", str(source_id), "--unset-config", "page_size")
    assert (code, out) == (0, f"updated source {source_id} (jira): config\n")

    source, credentials = stored_source(settings, source_id)
    assert source.config == {"projects": [project]}  # a list key, as `source add --config` stores it
    assert credentials == {"email": "bot@cli-update.example", "token": token_for("jira", tenant)}
    with admin_engine(settings).connect() as conn:
        audited = conn.execute(
            text(
                "select actor, new_values from control.audit_log where action = 'source.update' "
                "and entity_id = :id order by audit_id"
            ),
            {"id": str(source_id)},
        ).all()
    assert [(actor, values["config"], values["credentials_changed"]) for actor, values in audited] == [
        ("cli:tester", {"page_size": "50", "projects": [project]}, ["token"]),
        ("cli:tester", {"projects": [project]}, []),
    ]
    assert all(token_for("jira", tenant) not in str(values) for _, values in audited)
    assert pulse("source", "update", str(source_id))[0] == 2  # nothing to change


def test_discovery_proposes_stores_and_keeps_an_admin_override(settings: Settings, sandbox: SandboxServer) -> None:
    tenant = "cli_map"
    add_tenant(tenant)
    source_id = add_jira_source(sandbox, tenant, "jira", "pulse.bot@cli-map.example", token_for("jira", tenant))

    code, out = pulse("source", "discover", str(source_id), "--dry-run")
    assert code == 0, out
    proposed = printed_mappings(out)
    assert {name: field for name, (field, _) in proposed.items()} == SANDBOX_FIELDS
    assert proposed["story_points"] == (STORY_POINTS_FIELD, "schema")
    assert proposed["sprint"] == (SPRINT_FIELD, "schema")
    assert "stored" not in out
    assert stored_source(settings, source_id)[0].field_mappings == {}

    code, out = pulse("source", "discover", str(source_id))
    assert code == 0, out
    assert out.endswith(f"stored {len(SANDBOX_FIELDS)} mappings on source {source_id}\n")
    stored = stored_source(settings, source_id)[0].field_mappings
    assert field_ids(stored) == SANDBOX_FIELDS
    assert stored["story_points"] == {"field_id": STORY_POINTS_FIELD, "field_name": "Story Points", "method": "schema"}
    assert stored["sprint"] == {"field_id": SPRINT_FIELD, "field_name": "Sprint", "method": "schema"}

    assert pulse("source", "map", str(source_id), "story_points", OLD_STORY_POINTS) == (
        0,
        f"source {source_id}: story_points -> {OLD_STORY_POINTS}\n",
    )
    overridden = {**SANDBOX_FIELDS, "story_points": OLD_STORY_POINTS}
    stored = stored_source(settings, source_id)[0].field_mappings
    assert field_ids(stored) == overridden
    assert stored["story_points"] == {"field_id": OLD_STORY_POINTS, "field_name": "", "method": "admin"}

    code, out = pulse("source", "discover", str(source_id))
    assert code == 0, out
    assert printed_mappings(out)["story_points"] == (OLD_STORY_POINTS, "admin")
    assert field_ids(stored_source(settings, source_id)[0].field_mappings) == overridden

    code, out = pulse("source", "map", str(source_id), "points", STORY_POINTS_FIELD)
    assert code == 2 and "unknown field 'points'" in out
    with admin_engine(settings).connect() as conn:
        audit = conn.execute(
            text(
                "select actor, action from control.audit_log where entity_type = 'source' and entity_id = :id "
                "order by audit_id"
            ),
            {"id": str(source_id)},
        ).all()
    assert [tuple(row) for row in audit] == [
        ("cli:tester", "source.add"),
        ("cli:tester", "source.field_mappings"),  # discover
        ("cli:tester", "source.field_mappings"),  # map
        ("cli:tester", "source.field_mappings"),  # rediscover
    ]


def jira_ms(moment: datetime) -> datetime:
    """Jira writes timestamps to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_a_windowed_sync_loads_only_the_issues_updated_in_the_window(
    settings: Settings, db_url: str, sandbox: SandboxServer
) -> None:
    tenant = "cli_windowed"
    add_tenant(tenant)
    source_id = add_jira_source(sandbox, tenant, "jira", "pulse.bot@cli-windowed.example", token_for("jira", tenant))
    world = sandbox.work_world(tenant)
    last = max(item.updated_at for item in world.items).date()
    start, end = last - timedelta(days=20), last - timedelta(days=6)
    lower = datetime.combine(start, time(), tzinfo=UTC)  # the CLI's days are UTC days: [from, to)
    upper = datetime.combine(end, time(), tzinfo=UTC)
    with sandbox.locked():
        expected = {str(item.id) for item in world.items if lower <= jira_ms(item.updated_at) < upper}
        before = sum(1 for item in world.items if jira_ms(item.updated_at) < lower)
        after = sum(1 for item in world.items if jira_ms(item.updated_at) >= upper)
    assert expected and before and after, "the window cuts the tenant's issues on both sides"

    code, out = pulse("sync", "--tenant", tenant, "--source", str(source_id), "--from", f"{start}", "--to", f"{end}")

    with psycopg.connect(db_url) as conn:
        loaded = {row[0] for row in conn.execute(f"select id from raw_jira__{tenant}.issues")}
        updated = conn.execute(f"select min(updated_at), max(updated_at) from raw_jira__{tenant}.issues").fetchone()
    assert loaded == expected
    assert updated is not None and lower <= updated[0] and updated[1] < upper
    source, _ = stored_source(settings, source_id)
    assert (source.last_sync_status, source.last_sync_error, source.consecutive_failures) == ("succeeded", None, 0)
    # The load found no stored mappings, so it discovered and stored them first.
    assert field_ids(source.field_mappings) == SANDBOX_FIELDS
    # The run's Jira step recorded what it loaded, for this tenant's partition.
    records = dg.DagsterInstance.get().fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", "jira", "issues"]), asset_partitions=[tenant]), limit=1
    )
    materialization = records.records[0].asset_materialization
    assert materialization is not None
    assert materialization.metadata["rows_loaded"].value == len(expected)
    # The same run built the dbt models downstream of the Jira tables, and their dbt parents
    # (the other tools' staging views the unified models union), on a warehouse that had none.
    assert code == 0, out
    assert f"synced {tenant}: Dagster run " in out


@pytest.mark.usefixtures("settings")
def test_sync_refuses_a_bad_window_before_loading_anything(sandbox: SandboxServer) -> None:
    tenant = "cli_bad_window"
    add_tenant(tenant)
    add_jira_source(sandbox, tenant, "jira", "pulse.bot@cli-bad-window.example", token_for("jira", tenant))

    code, out = pulse("sync", "--tenant", tenant, "--source", "jira", "--from", "2026-02-30", "--to", "2026-03-10")
    assert code == 2
    assert "Invalid value for '--from': '2026-02-30' does not match the format '%Y-%m-%d'." in out

    code, out = pulse("sync", "--tenant", tenant, "--source", "jira", "--from", "2026-03-10", "--to", "2026-03-01")
    assert code == 2
    assert "--from 2026-03-10 must be before --to 2026-03-01" in out

    code, out = pulse("sync", "--tenant", tenant, "--from", "2026-03-01")
    assert code == 2
    assert "--from/--to need --source" in out

    code, out = pulse("sync", "--tenant", tenant, "--source", "nope", "--from", "2026-03-01")
    assert code == 1
    assert f"tenant '{tenant}' has no source 'nope'" in out

    with admin_engine().connect() as conn:
        raw = conn.execute(text(f"select to_regclass('raw_jira__{tenant}.issues')")).scalar()
        status: str = conn.execute(
            text("select last_sync_status from control.sources where tenant_id = :t"), {"t": tenant}
        ).scalar_one()
    assert (raw, status) == (None, "never")
