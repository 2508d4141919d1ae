"""The README's first command, as a user runs it: `pulse demo`, then Ctrl-C.

From an empty PULSE_HOME the demo must start its own database and sandbox, build three
tenants through Dagster, each from the tools of its own mix (acme: Jira and GitHub; globex:
ClickUp and GitHub; initech: Azure Boards and Azure DevOps Git), serve the Dagster UI and
Streamlit, show each tenant's real figures (checked against the sandbox's own data), and
stop everything it started on Ctrl-C. Only the Streamlit test needs a browser (Debian
chromium); the others run without one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.sandbox import SandboxServer, github_world
from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SANDBOX_SEED = 42  # the seed `pulse demo` starts its sandbox with
TENANTS = ("acme", "globex", "initech")

pytestmark = [pytest.mark.e2e]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)


@dataclass
class Demo:
    process: subprocess.Popen[str]
    home: Path
    dagster: str
    streamlit: str
    output: list[str]
    env: dict[str, str]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(predicate: object, what: str, demo: Demo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if demo.process.poll() is not None:
            pytest.fail(f"the demo exited ({demo.process.returncode}) before {what}:\n" + "".join(demo.output[-60:]))
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n" + "".join(demo.output[-60:]))
        time.sleep(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("demo_home")
    dagster_port, streamlit_port = free_port(), free_port()
    env = {
        **os.environ,
        "PULSE_HOME": str(home),
        "PULSE_DB_PORT": str(free_port()),
        "PULSE_SANDBOX_URL": f"http://127.0.0.1:{free_port()}",
        "DAGSTER_HOME": str(home / "dagster"),
        "PULSE_AUTH": "dev",
    }
    env.pop("PULSE_DATABASE_URL", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("pulse")),
            "demo",
            "--dagster-port",
            str(dagster_port),
            "--streamlit-port",
            str(streamlit_port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    output: list[str] = []
    running = Demo(process, home, f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{streamlit_port}", output, env)

    banner = threading.Event()

    def read_output() -> None:
        """Keep the demo's output (for failure messages) and notice its banner, line by line."""
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Pulse demo is running" in line:
                banner.set()

    threading.Thread(target=read_output, daemon=True).start()

    try:
        wait_for(banner.is_set, "the demo's banner", running, timeout=600)
        wait_for(lambda: http_ok(f"{running.dagster}/server_info"), "the Dagster UI", running, timeout=180)
        wait_for(lambda: http_ok(f"{running.streamlit}/_stcore/health"), "Streamlit", running, timeout=120)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()


def dagster_partitions(base_url: str, key: list[str]) -> set[str]:
    query = {
        "query": "query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset { "
        "assetMaterializations(limit: 20) { partition } } } }",
        "variables": {"key": {"path": key}},
    }
    request = urllib.request.Request(
        f"{base_url}/graphql", data=json.dumps(query).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    return {m["partition"] for m in body["data"]["assetOrError"]["assetMaterializations"]}


def test_the_dagster_ui_shows_every_tenant_materialized(demo: Demo) -> None:
    expected = {"acme", "globex", "initech"}
    assert dagster_partitions(demo.dagster, ["raw", "github", "pull_requests"]) == expected
    assert dagster_partitions(demo.dagster, ["marts", "fct_pull_requests"]) == expected


def demo_query(demo: Demo, *queries: str) -> list[list[tuple[Any, ...]]]:
    """The rows of each query from the demo's own database (its URL as `pulse db url` prints it)."""
    url = subprocess.run(
        [str(Path(sys.executable).with_name("pulse")), "db", "url"],
        cwd=REPO,
        env=demo.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with psycopg.connect(url) as conn:
        return [conn.execute(sql).fetchall() for sql in queries]


def test_each_tenant_gets_the_sources_of_its_tool_mix(demo: Demo) -> None:
    [sources] = demo_query(
        demo,
        "select tenant_id, type, last_sync_status from control.sources "
        "where tenant_id in ('acme', 'globex', 'initech')",
    )
    by_tenant: dict[str, set[str]] = {}
    for tenant, source_type, _ in sources:
        by_tenant.setdefault(tenant, set()).add(source_type)
    assert by_tenant == {
        "acme": {"jira", "github", "agent_platform"},
        "globex": {"clickup", "github", "agent_platform"},
        "initech": {"azure_boards", "azure_devops_git", "agent_platform"},
    }
    assert len(sources) == 9, "one source of each type, no duplicates"
    assert {status for _, _, status in sources} == {"succeeded"}


def test_each_tenant_lands_exactly_its_tools_raw_data(demo: Demo) -> None:
    [schemas] = demo_query(
        demo,
        "select schema_name from information_schema.schemata "
        r"where schema_name ~ '^raw_(jira|clickup|azure_boards|azure_devops_git|github)__'",
    )
    tool_schemas = {row[0] for row in schemas}
    # No tenant got another tool's schema: no GitHub for initech, whose pull requests are on Azure.
    assert tool_schemas == {
        "raw_jira__acme",
        "raw_github__acme",
        "raw_clickup__globex",
        "raw_github__globex",
        "raw_azure_boards__initech",
        "raw_azure_devops_git__initech",
    }

    # The truth the demo's sandbox served: the same worlds, generated here for today.
    sandbox = SandboxServer(seed=SANDBOX_SEED)
    work = {tenant: sandbox.work_world(tenant) for tenant in TENANTS}
    pull_requests = {tenant: sum(1 for _ in sandbox.world(tenant).pull_requests()) for tenant in TENANTS}
    assert {tenant: (world.tracker, world.git_host) for tenant, world in work.items()} == {
        "acme": ("jira", "github"),
        "globex": ("clickup", "github"),
        "initech": ("azure_boards", "azure_devops"),
    }
    expected = {
        "raw_jira__acme.issues": len(work["acme"].items),
        "raw_jira__acme.sprints": len(work["acme"].sprints),
        "raw_github__acme.pull_requests": pull_requests["acme"],
        "raw_clickup__globex.tasks": len(work["globex"].items),
        "raw_clickup__globex.lists where is_sprint": len(work["globex"].sprints),
        "raw_github__globex.pull_requests": pull_requests["globex"],
        "raw_azure_boards__initech.work_items": len(work["initech"].items),
        "raw_azure_boards__initech.iterations": len(work["initech"].sprints),
        "raw_azure_devops_git__initech.pull_requests": pull_requests["initech"],
    }
    assert all(n > 0 for n in expected.values()), expected
    results = demo_query(demo, *(f"select count(*) from {table}" for table in expected))
    counted = {table: rows[0][0] for table, rows in zip(expected, results, strict=True)}
    assert counted == expected


def test_no_model_builds_a_sized_character_column(demo: Demo) -> None:
    # Pulse's incremental materialization leaves out dbt's widening of sized character columns
    # (varchar(n), char(n)) before each write (dbt_project/macros/incremental_materialization.sql):
    # it holds only while no model's table has one. The demo builds every model from every tool.
    [tables, sized] = demo_query(
        demo,
        "select count(*) from information_schema.tables "
        "where table_schema in ('staging', 'intermediate', 'marts') and table_type = 'BASE TABLE'",
        "select table_schema, table_name, column_name, data_type, character_maximum_length "
        "from information_schema.columns "
        "where table_schema in ('staging', 'intermediate', 'marts') and character_maximum_length is not null "
        "order by 1, 2, 3",
    )
    assert tables[0][0] >= 40, "the models' tables were read"
    assert sized == []


@needs_chromium
def test_streamlit_shows_the_sandbox_figures_to_a_demo_user(demo: Demo) -> None:
    from playwright.sync_api import expect, sync_playwright

    # The truth the sandbox served: acme's PRs opened in the page's default window (90 days, UTC).
    today = datetime.now(UTC).date()
    start = today - timedelta(days=89)
    world = github_world("acme", seed=42)
    opened = sum(1 for pr in world.pull_requests() if start <= pr.created_at.astimezone(UTC).date() <= today)
    merged = sum(
        1
        for pr in world.pull_requests()
        if pr.merged_at is not None and start <= pr.created_at.astimezone(UTC).date() <= today
    )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            expect.set_options(timeout=60_000)
            page.goto(demo.streamlit)
            page.get_by_role("button", name="Sign in as ada@acme.example").click()

            def metric(label: str) -> str:
                locator = page.locator('[data-testid="stMetric"]').filter(has_text=label)
                return locator.locator('[data-testid="stMetricValue"]').inner_text().strip()

            expect(page.locator('[data-testid="stMetric"]')).to_have_count(4)
            assert metric("PRs opened") == f"{opened:,}"
            assert metric("PRs merged") == f"{merged:,}"
            expect(page.get_by_text("Acme Corporation").first).to_be_visible()
        finally:
            browser.close()


def test_ctrl_c_stops_everything_the_demo_started(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=90) == 0
    assert not http_ok(f"{demo.dagster}/server_info")
    assert not http_ok(f"{demo.streamlit}/_stcore/health")
    assert not (demo.home / "pgdata" / "postmaster.pid").exists(), "the demo's database is still running"
