"""`pulse demo`: the whole platform on one machine, from an empty PULSE_HOME.

Starts the database (embedded unless PULSE_DATABASE_URL), migrates, starts the sandbox APIs,
creates three tenants with users and GitHub sources pointing at the sandbox, syncs each
tenant through Dagster, then serves the Dagster UI and Streamlit until Ctrl-C and stops
everything it started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pulse import control
from pulse.db import admin_engine, database_url
from pulse.services import start_service, stop_service
from pulse.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

ACTOR = "system:demo"


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: str
    team: str | None = None


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    timezone: str
    users: tuple[DemoUser, ...]


DEMO_TEAMS = (("platform", "Platform"), ("product", "Product"))

DEMO_TENANTS = (
    DemoTenant(
        "acme",
        "Acme Corporation",
        "America/New_York",
        (
            DemoUser("ada@acme.example", "Ada Lovelace", "org_admin"),
            DemoUser("linus@acme.example", "Linus Torvalds", "team_lead", "platform"),
            DemoUser("grace@acme.example", "Grace Hopper", "member", "platform"),
        ),
    ),
    DemoTenant(
        "globex",
        "Globex",
        "Europe/Berlin",
        (
            DemoUser("hank@globex.example", "Hank Scorpio", "org_admin"),
            DemoUser("mona@globex.example", "Mona Simpson", "team_lead", "product"),
        ),
    ),
    DemoTenant(
        "initech",
        "Initech",
        "America/Chicago",
        (
            DemoUser("bill@initech.example", "Bill Lumbergh", "org_admin"),
            DemoUser("peter@initech.example", "Peter Gibbons", "member", "product"),
        ),
    ),
)

PLATFORM_USERS = (
    DemoUser("pat@pulse.example", "Pat Platform", "platform_admin"),
    DemoUser("amy@pulse.example", "Amy Accounts", "account_manager"),
)


def sandbox_token(tenant_slug: str) -> str:
    return f"ghs_sandbox_{tenant_slug}"


def seed_demo(settings: Settings, sandbox_url: str, tenants: tuple[DemoTenant, ...] = DEMO_TENANTS) -> None:
    """Create the demo tenants, teams, users and GitHub sources; safe to run again."""
    with admin_engine(settings).begin() as conn:
        for tenant in tenants:
            if control.get_tenant(conn, tenant.slug) is None:
                control.add_tenant(conn, tenant.slug, tenant.name, actor=ACTOR, timezone=tenant.timezone)
            for slug, name in DEMO_TEAMS:
                control.add_team(conn, tenant.slug, slug, name, actor=ACTOR)
            for user in tenant.users:
                control.add_user(conn, user.email, user.name, actor=ACTOR)
                control.grant_role(conn, user.email, user.role, actor=ACTOR, tenant_id=tenant.slug, team_slug=user.team)
            if not control.list_sources(conn, tenant.slug, type="github"):
                control.add_source(
                    conn,
                    tenant.slug,
                    "github",
                    "github",
                    sandbox_url,
                    credentials={"token": sandbox_token(tenant.slug)},
                    config={"org": f"{tenant.slug}-eng"},
                    secret_key=settings.secret_key,
                    actor=ACTOR,
                )
            if not control.list_sources(conn, tenant.slug, type="agent_platform"):
                control.add_source(
                    conn,
                    tenant.slug,
                    "agent_platform",
                    "agent_platform",
                    sandbox_url,
                    credentials={"token": f"aps_sandbox_{tenant.slug}"},
                    config={},
                    secret_key=settings.secret_key,
                    actor=ACTOR,
                )
        for user in PLATFORM_USERS:
            control.add_user(conn, user.email, user.name, actor=ACTOR)
        control.grant_role(conn, PLATFORM_USERS[0].email, "platform_admin", actor=ACTOR)
        for tenant in tenants[:2]:
            control.grant_role(conn, PLATFORM_USERS[1].email, "account_manager", actor=ACTOR, tenant_id=tenant.slug)


def service_env(settings: Settings) -> dict[str, str]:
    from orchestration.lib.instance import ensure_dagster_home
    from pulse.dbt import dbt_env

    ensure_dagster_home(settings)
    return {
        **os.environ,
        **dbt_env(settings),
        "PULSE_HOME": str(settings.home),
        "PULSE_DB_PORT": str(settings.db_port),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the demo through its cleanup, even when it was started in
    the background (where a shell sets SIGINT to be ignored)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def run_demo(settings: Settings, *, serve: bool, dagster_port: int = 3000, streamlit_port: int = 8501) -> int:
    from connectors.sandbox import SandboxServer
    from orchestration.lib.run import materialize_tenant
    from pulse.db.embedded import EmbeddedPostgres
    from pulse.db.migrate import migrate
    from pulse.dbt import ensure_manifest

    started = time.monotonic()
    _interrupt_on_signals()
    cluster = EmbeddedPostgres(settings) if settings.uses_embedded_database else None
    db_was_running = cluster.status().running if cluster else True
    database_url(settings)
    migrate(settings)
    sandbox_parts = urlsplit(settings.sandbox_url)
    sandbox = SandboxServer(host=sandbox_parts.hostname or "127.0.0.1", port=sandbox_parts.port or 8765).start()
    children: list[subprocess.Popen[bytes]] = []
    try:
        seed_demo(settings, sandbox.url)
        ensure_manifest()
        for tenant in DEMO_TENANTS:
            outcome = materialize_tenant(settings, tenant.slug)
            if not outcome.success:
                log.error("sync of %s failed: %s", tenant.slug, outcome.error)
                return 1
            log.info("synced %s (Dagster run %s)", tenant.slug, outcome.run_id)
        log.info("demo data built in %.1f s", time.monotonic() - started)
        if not serve:
            return 0
        env = service_env(settings)
        bin_dir = Path(sys.executable).parent
        logs = settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        children.append(
            start_service(
                [
                    str(bin_dir / "dagster"),
                    "dev",
                    "-w",
                    str(PROJECT_ROOT / "workspace.yaml"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(dagster_port),
                ],
                env,
                logs / "dagster.log",
            )
        )
        children.append(
            start_service(
                [
                    str(bin_dir / "streamlit"),
                    "run",
                    str(PROJECT_ROOT / "apps" / "streamlit" / "streamlit_app.py"),
                    "--server.headless",
                    "true",
                    "--server.address",
                    "127.0.0.1",
                    "--server.port",
                    str(streamlit_port),
                    "--browser.gatherUsageStats",
                    "false",
                ],
                env,
                logs / "streamlit.log",
            )
        )
        print(_banner(dagster_port, streamlit_port, logs), flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(1)
        log.error("a service exited unexpectedly; see %s", logs)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            stop_service(child)
        sandbox.stop()
        if cluster is not None and not db_was_running:
            cluster.stop()


def _banner(dagster_port: int, streamlit_port: int, logs: Path) -> str:
    users = [u for t in DEMO_TENANTS for u in t.users] + list(PLATFORM_USERS)
    sign_ins = "\n".join(f"    {u.email:<26} {u.role}" for u in users)
    return (
        "\nPulse demo is running (Ctrl-C stops everything):\n"
        f"  Streamlit   http://127.0.0.1:{streamlit_port}   development sign-in, pick a user:\n{sign_ins}\n"
        f"  Dagster UI  http://127.0.0.1:{dagster_port}\n"
        f"  Logs        {logs}\n"
    )
