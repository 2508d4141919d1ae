"""`pulse demo`: the whole platform on one machine, from an empty PULSE_HOME.

Starts the database (embedded unless PULSE_DATABASE_URL), migrates, starts the sandbox APIs,
creates three tenants with users and, pointing at the sandbox, the sources of each tenant's
tool mix (the sandbox's ``TOOL_MIX`` in ``connectors/sandbox/work/world.py``) and an
agent-platform source:

* acme: Jira and GitHub (``raw_jira__acme``, ``raw_github__acme``);
* globex: ClickUp and GitHub (``raw_clickup__globex``, ``raw_github__globex``);
* initech: Azure Boards and Azure DevOps Git (``raw_azure_boards__initech``,
  ``raw_azure_devops_git__initech``); no GitHub source, because its pull requests live on
  its Azure DevOps organisation (the sandbox's GitHub API would serve the same ones again).

Then it syncs each tenant through Dagster (dlt loads, then ``dbt build``), serves the Dagster
UI and Streamlit until Ctrl-C, and stops everything it started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import Connection

from pulse import control
from pulse.db import admin_engine, database_url
from pulse.services import start_service, stop_service
from pulse.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from connectors.sandbox import SandboxServer

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


@dataclass(frozen=True)
class DemoSource:
    """One source a demo tenant gets, named after its type."""

    type: str
    base_url: str
    credentials: Mapping[str, str]
    config: Mapping[str, str]


#: Source type of each sandbox git host (``TOOL_MIX`` names Azure DevOps Git ``azure_devops``).
GIT_HOST_SOURCE_TYPES = {"github": "github", "azure_devops": "azure_devops_git"}


def demo_sources(tenant: DemoTenant, sandbox: SandboxServer) -> tuple[DemoSource, ...]:
    """The sources of ``tenant``'s tool mix (its tracker and git host) and its agent platform,
    configured as an admin would configure them against the sandbox at ``sandbox.url``."""
    from connectors.sandbox.azure_common import organisation_of, project_name
    from connectors.sandbox.azure_git.payloads import git_project
    from connectors.sandbox.clickup.workspace import ClickUpWorkspace
    from connectors.sandbox.tools import token_for

    slug, url = tenant.slug, sandbox.url
    admin = next(user.email for user in tenant.users if user.role == "org_admin")  # who connected Jira
    with sandbox.locked():
        world = sandbox.work_world(slug)
        tracker, git_host = world.tracker, world.git_host
        projects = ",".join(project_name(project) for project in world.projects)
        repositories_project = git_project(world)
        workspace_id = ClickUpWorkspace(world).team_id
    azure_url = f"{url}/azure/{organisation_of(slug)}"
    trackers = {
        "jira": DemoSource("jira", f"{url}/jira", {"email": admin, "token": token_for("jira", slug)}, {}),
        "clickup": DemoSource(
            "clickup", f"{url}/clickup", {"token": token_for("clickup", slug)}, {"workspace_id": workspace_id}
        ),
        "azure_boards": DemoSource(
            "azure_boards", azure_url, {"token": token_for("azure", slug)}, {"project": projects}
        ),
    }
    git_hosts = {
        "github": DemoSource("github", url, {"token": sandbox_token(slug)}, {"org": f"{slug}-eng"}),
        "azure_devops_git": DemoSource(
            "azure_devops_git", azure_url, {"token": token_for("azure", slug)}, {"project": repositories_project}
        ),
    }
    agent_platform = DemoSource("agent_platform", url, {"token": f"aps_sandbox_{slug}"}, {})
    return trackers[tracker], git_hosts[GIT_HOST_SOURCE_TYPES[git_host]], agent_platform


def seed_demo(settings: Settings, sandbox: SandboxServer, tenants: tuple[DemoTenant, ...] = DEMO_TENANTS) -> None:
    """Create the demo tenants, teams, users and sources (:func:`demo_sources`); safe to run
    again: a tenant that already has a source of a type gets no second one, and the sources
    the demo made earlier follow the day's sandbox (:func:`_follow_sandbox`)."""
    with admin_engine(settings).begin() as conn:
        for tenant in tenants:
            if control.get_tenant(conn, tenant.slug) is None:
                control.add_tenant(conn, tenant.slug, tenant.name, actor=ACTOR, timezone=tenant.timezone)
            for slug, name in DEMO_TEAMS:
                control.add_team(conn, tenant.slug, slug, name, actor=ACTOR)
            for user in tenant.users:
                control.add_user(conn, user.email, user.name, actor=ACTOR)
                control.grant_role(conn, user.email, user.role, actor=ACTOR, tenant_id=tenant.slug, team_slug=user.team)
            for source in demo_sources(tenant, sandbox):
                existing = control.list_sources(conn, tenant.slug, type=source.type)
                if existing:
                    _follow_sandbox(conn, existing[0], source)
                    continue
                control.add_source(
                    conn,
                    tenant.slug,
                    source.type,
                    source.type,
                    source.base_url,
                    credentials=dict(source.credentials),
                    config=dict(source.config),
                    secret_key=settings.secret_key,
                    actor=ACTOR,
                )
        for user in PLATFORM_USERS:
            control.add_user(conn, user.email, user.name, actor=ACTOR)
        control.grant_role(conn, PLATFORM_USERS[0].email, "platform_admin", actor=ACTOR)
        for tenant in tenants[:2]:
            control.grant_role(conn, PLATFORM_USERS[1].email, "account_manager", actor=ACTOR, tenant_id=tenant.slug)


def _follow_sandbox(conn: Connection, stored: control.Source, wanted: DemoSource) -> None:
    """Point a source the demo created earlier at today's sandbox.

    The sandbox's worlds are generated per day (an Azure DevOps tenant's projects differ from
    one day to the next) and its URL is PULSE_SANDBOX_URL, so a demo run on a kept PULSE_HOME
    updates the base URL and config of its own sources (named after their type); audited.
    """
    config = dict(wanted.config)
    if stored.name != wanted.type or (stored.base_url == wanted.base_url and stored.config == config):
        return
    control.update_source(conn, stored.source_id, actor=ACTOR, base_url=wanted.base_url, config=config,
                          unset_config=tuple(set(stored.config) - set(config)))  # fmt: skip


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
        seed_demo(settings, sandbox)
        ensure_manifest()
        env = service_env(settings)
        bin_dir = Path(sys.executable).parent
        logs = settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # the warm dbt every dbt step of the runs below and of the Dagster UI's forks from
        children.append(start_service([str(bin_dir / "pulse"), "dbt-server"], env, logs / "dbt-server.log"))
        for tenant in DEMO_TENANTS:
            outcome = materialize_tenant(settings, tenant.slug)
            if not outcome.success:
                log.error("sync of %s failed: %s", tenant.slug, outcome.error)
                return 1
            log.info("synced %s (Dagster run %s)", tenant.slug, outcome.run_id)
        log.info("demo data built in %.1f s", time.monotonic() - started)
        if not serve:
            return 0
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
