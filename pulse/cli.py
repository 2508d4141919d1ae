"""The `pulse` command line: database, tenants, users, sources, sandbox, sync, demo."""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import click
from sqlalchemy import Connection

from pulse import control
from pulse.settings import Settings, get_settings

F = TypeVar("F", bound=Callable[..., Any])

#: Failures that carry a message meant for the person at the terminal.
USER_ERRORS: tuple[type[Exception], ...] = (control.ControlError,)


def _user_errors() -> tuple[type[Exception], ...]:
    from pulse.db.embedded import EmbeddedPostgresError
    from pulse.secrets import SecretKeyError

    return (*USER_ERRORS, EmbeddedPostgresError, SecretKeyError)


def actor() -> str:
    return os.environ.get("PULSE_ACTOR") or f"cli:{getpass.getuser()}"


@contextmanager
def transaction(settings: Settings) -> Iterator[Connection]:
    from pulse.db import admin_engine

    with admin_engine(settings).begin() as conn:
        yield conn


class PulseGroup(click.Group):
    """Turns known failures into one clear line and exit code 1, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _user_errors() as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=PulseGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def main(verbose: bool) -> None:
    """Pulse: engineering analytics and AI-agent cost, per tenant."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


# -- database -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The warehouse: embedded PostgreSQL under PULSE_HOME, or PULSE_DATABASE_URL."""


def _cluster(settings: Settings) -> Any:
    from pulse.db.embedded import EmbeddedPostgres

    if not settings.uses_embedded_database:
        raise click.ClickException(
            "PULSE_DATABASE_URL is set, so Pulse uses that server and manages no embedded cluster."
        )
    return EmbeddedPostgres(settings)


@db.command("start")
def db_start() -> None:
    """Start the embedded cluster (initialising it the first time)."""
    click.echo(_cluster(get_settings()).start().describe())


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster; its data stays in PULSE_HOME."""
    click.echo(_cluster(get_settings()).stop().describe())


@db.command("status")
def db_status() -> None:
    """Say whether the database is running and where."""
    settings = get_settings()
    if not settings.uses_embedded_database:
        from pulse.db import ConnectionParts

        parts = ConnectionParts.from_url(settings.external_database_url or "")
        click.echo(f"external server {parts.host}:{parts.port}/{parts.dbname} (PULSE_DATABASE_URL)")
        return
    click.echo(_cluster(settings).status().describe())


@db.command("url")
@click.option("--reader", is_flag=True, help="The row-level-security reader role's URL instead.")
def db_url(reader: bool) -> None:
    """Print the connection URL (contains a password: keep it to yourself)."""
    from pulse.db import database_url, reader_url

    settings = get_settings()
    click.echo(reader_url(settings) if reader else database_url(settings))


@db.command("migrate")
@click.option("--revision", default="head", show_default=True)
def db_migrate(revision: str) -> None:
    """Apply control-plane migrations."""
    from pulse.db.migrate import current_revision, migrate

    settings = get_settings()
    migrate(settings, revision)
    click.echo(f"control plane at revision {current_revision(settings)}")


# -- tenants, teams, users ---------------------------------------------------------------


@main.group()
def tenant() -> None:
    """Tenants (customer organisations)."""


@tenant.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Display name.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone for the tenant's months.")
def tenant_add(slug: str, name: str, timezone: str) -> None:
    """Add a tenant; SLUG names its schemas (lowercase, digits, underscores)."""
    with transaction(get_settings()) as conn:
        added = control.add_tenant(conn, slug, name, actor=actor(), timezone=timezone)
    click.echo(f"added tenant {added.slug} ({added.name})")


@tenant.command("list")
def tenant_list() -> None:
    """List tenants."""
    with transaction(get_settings()) as conn:
        tenants = control.list_tenants(conn)
    for t in tenants:
        click.echo(f"{t.slug}\t{t.name}\t{'active' if t.is_active else 'inactive'}\t{t.timezone}")


@tenant.command("deactivate")
@click.argument("slug")
def tenant_deactivate(slug: str) -> None:
    """Deactivate a tenant: no more syncs, no sign-ins; its data stays."""
    with transaction(get_settings()) as conn:
        control.deactivate_tenant(conn, slug, actor=actor())
    click.echo(f"deactivated tenant {slug}")


@main.group()
def team() -> None:
    """Teams within a tenant."""


@team.command("add")
@click.argument("tenant_id")
@click.argument("slug")
@click.option("--name", required=True)
def team_add(tenant_id: str, slug: str, name: str) -> None:
    """Add (or rename) a team."""
    with transaction(get_settings()) as conn:
        team_id = control.add_team(conn, tenant_id, slug, name, actor=actor())
    click.echo(f"team {slug} of {tenant_id}: id {team_id}")


@main.group()
def user() -> None:
    """Users and their role grants."""


@user.command("add")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(control.ROLES), help="Grant this role too.")
@click.option("--tenant", "tenant_id", help="Tenant the role is scoped to.")
@click.option("--team", "team_slug", help="Team the role is scoped to (team_lead, member).")
def user_add(email: str, name: str, role: str | None, tenant_id: str | None, team_slug: str | None) -> None:
    """Add (or rename) a user, optionally granting a role."""
    with transaction(get_settings()) as conn:
        control.add_user(conn, email, name, actor=actor())
        if role:
            control.grant_role(conn, email, role, actor=actor(), tenant_id=tenant_id, team_slug=team_slug)
    click.echo(f"user {email}" + (f" granted {role}" if role else ""))


# -- sources ------------------------------------------------------------------------------


#: Source config keys that hold lists (comma-separated on the command line).
LIST_CONFIG_KEYS = frozenset({"repositories", "projects", "space_ids"})


def _parse_pairs(pairs: tuple[str, ...], hint: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=hint)
        out[key.strip()] = value
    return out


def _parse_config(pairs: tuple[str, ...]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        key, value = pair.split("=", 1)
        config[key.strip()] = [v for v in value.split(",") if v] if key.strip() in LIST_CONFIG_KEYS else value
    return config


@main.group()
def source() -> None:
    """Sources: a tenant's connection to one tool."""


@source.command("add")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--type", "source_type", required=True, type=click.Choice(control.SOURCE_TYPES))
@click.option("--name", required=True)
@click.option("--base-url", required=True, help="API base URL, e.g. https://api.github.com")
@click.option("--token-env", help="Read the token from this environment variable.")
@click.option("--config", "config_pairs", multiple=True, help="KEY=VALUE, e.g. org=acme-eng (repeatable).")
@click.option(
    "--credential",
    "credential_pairs",
    multiple=True,
    help="Credentials as KEY=VALUE, e.g. email=bot@acme.com (repeatable); token=... instead of --token-env.",
)
def source_add(
    tenant_id: str,
    source_type: str,
    name: str,
    base_url: str,
    token_env: str | None,
    config_pairs: tuple[str, ...],
    credential_pairs: tuple[str, ...],
) -> None:
    """Add a source. The token comes from --token-env, --credential token=..., or is prompted for
    (hidden); credentials are stored encrypted."""
    credentials = _parse_pairs(credential_pairs, "--credential")
    if token_env:
        if "token" in credentials:
            raise click.UsageError("give the token once: --token-env or --credential token=..., not both")
        token = os.environ.get(token_env)
        if not token:
            raise click.ClickException(f"Environment variable {token_env} is not set or empty.")
        credentials["token"] = token
    elif not credentials.get("token"):
        credentials["token"] = click.prompt("API token", hide_input=True)
    settings = get_settings()
    config = _parse_config(config_pairs)
    with transaction(settings) as conn:
        added = control.add_source(
            conn,
            tenant_id,
            source_type,
            name,
            base_url,
            credentials=credentials,
            config=config,
            secret_key=settings.secret_key,
            actor=actor(),
        )
    click.echo(f"added source {added.source_id}: {added.name} ({added.type}) for {added.tenant_id}")


@source.command("update")
@click.argument("source_id", type=int)
@click.option("--base-url", help="New API base URL.")
@click.option("--config", "config_pairs", multiple=True, help="KEY=VALUE to set (repeatable).")
@click.option("--unset-config", "unset_keys", multiple=True, help="A config KEY to remove (repeatable).")
@click.option("--credential", "credential_pairs", multiple=True, help="KEY=VALUE to set, e.g. token=... (repeatable).")
@click.option("--token-env", help="Read a new token from this environment variable.")
def source_update(
    source_id: int,
    base_url: str | None,
    config_pairs: tuple[str, ...],
    unset_keys: tuple[str, ...],
    credential_pairs: tuple[str, ...],
    token_env: str | None,
) -> None:
    """Change a source's base URL, config or credentials (merged into what is stored; audited)."""
    credentials = _parse_pairs(credential_pairs, "--credential")
    if token_env:
        if "token" in credentials:
            raise click.UsageError("give the token once: --token-env or --credential token=..., not both")
        token = os.environ.get(token_env)
        if not token:
            raise click.ClickException(f"Environment variable {token_env} is not set or empty.")
        credentials["token"] = token
    if not (base_url or config_pairs or unset_keys or credentials):
        raise click.UsageError("nothing to change: give --base-url, --config, --unset-config or --credential")
    settings = get_settings()
    with transaction(settings) as conn:
        updated = control.update_source(
            conn,
            source_id,
            actor=actor(),
            base_url=base_url,
            config=_parse_config(config_pairs),
            unset_config=unset_keys,
            credentials=credentials or None,
            secret_key=settings.secret_key,
        )
    changed = [*(["base URL"] if base_url else []), *(["config"] if config_pairs or unset_keys else [])]
    changed += ["credentials (" + ", ".join(sorted(credentials)) + ")"] if credentials else []
    click.echo(f"updated source {updated.source_id} ({updated.name}): {', '.join(changed)}")


@source.command("list")
@click.option("--tenant", "tenant_id")
def source_list(tenant_id: str | None) -> None:
    """List sources and their last sync (never their credentials)."""
    with transaction(get_settings()) as conn:
        sources = control.list_sources(conn, tenant_id)
    for s in sources:
        when = s.last_sync_at.isoformat(timespec="seconds") if s.last_sync_at else "-"
        click.echo(
            f"{s.source_id}\t{s.tenant_id}\t{s.type}\t{s.name}\t{s.base_url}\t{json.dumps(s.config)}\t"
            f"{s.last_sync_status}\t{when}\tfailures={s.consecutive_failures}"
        )
        if s.last_sync_error:
            click.echo(f"\t  last error: {s.last_sync_error}")


def _find_source(conn: Any, tenant_id: str, ref: str) -> control.Source:
    sources = control.list_sources(conn, tenant_id)
    found = [s for s in sources if str(s.source_id) == ref or s.name == ref]
    if not found:
        names = ", ".join(f"{s.source_id} ({s.name})" for s in sources) or "none"
        raise click.ClickException(f"tenant {tenant_id!r} has no source {ref!r}; its sources: {names}")
    return found[0]


@source.command("discover")
@click.argument("source_id", type=int)
@click.option("--dry-run", is_flag=True, help="Show the proposal without storing it.")
def source_discover(source_id: int, dry_run: bool) -> None:
    """Propose field mappings (story points, sprint, DMT fields) from the tool's field metadata and store them."""
    from pulse.fieldmap import as_json
    from pulse.sources import DiscoveryError, discover

    settings = get_settings()
    with transaction(settings) as conn:
        src = control.get_source(conn, source_id)
        credentials = control.source_credentials(conn, source_id, settings.secret_key)
    try:
        proposal = discover(src, credentials)
    except DiscoveryError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, mapping in proposal.mappings.items():
        click.echo(f"{name}\t{mapping.field_id}\t{mapping.field_name}\t(by {mapping.method})")
    for name in proposal.missing:
        click.echo(f"{name}\t-\tnot found; set it with `pulse source map {source_id} {name} FIELD_ID`")
    if not dry_run:
        with transaction(settings) as conn:
            control.set_field_mappings(conn, source_id, as_json(proposal), actor=actor())
        click.echo(f"stored {len(proposal.mappings)} mappings on source {source_id}")


@source.command("map")
@click.argument("source_id", type=int)
@click.argument("canonical")
@click.argument("field_id")
@click.option("--field-name", default="", help="The field's display name, for the record.")
def source_map(source_id: int, canonical: str, field_id: str, field_name: str) -> None:
    """Override one field mapping (kept by later discoveries), e.g. `map 3 story_points customfield_10016`."""
    from pulse.fieldmap import override

    with transaction(get_settings()) as conn:
        src = control.get_source(conn, source_id)
        try:
            mappings = override(src.field_mappings, canonical, field_id, field_name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="CANONICAL") from exc
        control.set_field_mappings(conn, source_id, mappings, actor=actor())
    click.echo(f"source {source_id}: {canonical} -> {field_id}")


@source.command("test")
@click.argument("source_id", type=int)
def source_test(source_id: int) -> None:
    """Check that a source is reachable with its credentials; say exactly what failed."""
    from pulse.sources import check_source

    settings = get_settings()
    with transaction(settings) as conn:
        src = control.get_source(conn, source_id)
        credentials = control.source_credentials(conn, source_id, settings.secret_key)
    result = check_source(src, credentials)
    if not result.ok:
        raise click.ClickException(result.message)
    click.echo(result.message)


# -- API tokens ------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """API tokens: ingest (OTLP receiver, per tenant) and agent (MCP server, per user)."""


@token.command("create")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--kind", type=click.Choice(["ingest", "agent"]), required=True)
@click.option("--name", required=True, help="What the token is for, e.g. 'claude-code laptops'.")
@click.option("--user", "user_email", help="The user an agent token acts for.")
def token_create(tenant_id: str, kind: str, name: str, user_email: str | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from pulse.tokens import create_token

    with transaction(get_settings()) as conn:
        value = create_token(conn, tenant_id, kind, name=name, actor=actor(), user_email=user_email)
    click.echo(value)


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token; services stop accepting it within their cache time (at most a minute)."""
    from pulse.tokens import revoke_token

    with transaction(get_settings()) as conn:
        revoke_token(conn, token_id, actor=actor())
    click.echo(f"revoked token {token_id}")


# -- sandbox, sync, demo --------------------------------------------------------------------


@main.group()
def sandbox() -> None:
    """The sandbox: local simulators of the tools' APIs."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--seed", default=42, show_default=True, type=int)
def sandbox_serve(host: str, port: int, seed: int) -> None:
    """Serve the sandbox APIs until Ctrl-C."""
    from connectors.sandbox import serve

    click.echo(f"sandbox APIs on http://{host}:{port} (tokens: ghs_sandbox_<tenant>)")
    serve(host, port, seed)


@main.command("sync")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--source", "source_ref", help="Only this source (its id or name), and the models downstream.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="Backfill from this day (UTC).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Backfill up to this day (exclusive).")
def sync(tenant_id: str, source_ref: str | None, start: datetime | None, end: datetime | None) -> None:
    """Materialize a tenant's partition in-process (recorded in Dagster): every asset, or one
    source for a date window (`--source S --from D1 --to D2`) and the models downstream of it."""
    from orchestration.lib.run import SourceBackfill, materialize_tenant

    settings = get_settings()
    backfill = None
    with transaction(settings) as conn:
        control.require_tenant(conn, tenant_id)
        if source_ref is not None:
            src = _find_source(conn, tenant_id, source_ref)
            backfill = SourceBackfill(
                src.type,
                src.name,
                start.date().isoformat() if start else None,
                end.date().isoformat() if end else None,
            )
        elif start or end:
            raise click.UsageError("--from/--to need --source: a backfill window belongs to one source")
    if start and end and start >= end:
        raise click.UsageError(f"--from {start:%Y-%m-%d} must be before --to {end:%Y-%m-%d}")
    outcome = materialize_tenant(settings, tenant_id, backfill)
    if not outcome.success:
        raise click.ClickException(
            f"sync of {tenant_id} failed (Dagster run {outcome.run_id}, steps {', '.join(outcome.failed_steps)}):\n"
            f"{outcome.error}"
        )
    click.echo(f"synced {tenant_id}: Dagster run {outcome.run_id}")


@main.command("demo")
@click.option("--no-serve", is_flag=True, help="Build the demo data, then exit instead of serving the UIs.")
@click.option("--dagster-port", default=3000, show_default=True, type=int)
@click.option("--streamlit-port", default=8501, show_default=True, type=int)
def demo(no_serve: bool, dagster_port: int, streamlit_port: int) -> None:
    """Start everything: database, sandbox, three tenants, their sync, the Dagster UI and Streamlit."""
    from pulse.demo import run_demo

    sys.exit(run_demo(get_settings(), serve=not no_serve, dagster_port=dagster_port, streamlit_port=streamlit_port))


@main.command("dbt-server")
def dbt_server() -> None:
    """Serve warm dbt processes to ``pulse-dbt`` (what Dagster runs): dbt imported once, each
    command forked from it (pulse/warm_dbt.py). Stop it with Ctrl-C or SIGTERM."""
    from pulse.warm_dbt import jinja_cache_dir, serve, socket_path

    serve(socket_path(), jinja_cache_dir())


def _register_service_commands() -> None:
    """Commands whose implementation lives with the service they start."""
    from pulse.agents.cli import agents
    from pulse.budgets.cli import budget
    from pulse.compliance_cli import flag
    from pulse.mcp.cli import mcp
    from pulse.telemetry.cli import ingest

    main.add_command(agents)
    main.add_command(budget)
    main.add_command(flag)
    main.add_command(mcp)
    main.add_command(ingest)


_register_service_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
