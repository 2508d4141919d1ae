"""The critical journey in a real browser: sign in as an org admin, read the Pull requests page.

Starts ``streamlit run`` as a subprocess on a free port (same database as the test session),
drives Debian's chromium headless through Playwright's sync API, and asserts the figures the
page shows. Playwright never downloads a browser here: the test uses /usr/bin/chromium, and
skips only when it is absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# The seeded tenants, users and pull requests of the AppTest module (module-scoped fixtures:
# seeded for this module, removed after it).
from tests.integration.test_streamlit_pages import (  # noqa: F401
    ACME,
    ADA,
    APP,
    app_seed,
    pr_mart,
)

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"streamlit did not answer {url} in {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.3)


@pytest.fixture
def streamlit_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``streamlit run`` of the app on a free port; yields its base URL; always stopped."""
    request.getfixturevalue("app_seed")
    port = _free_port()
    log = tmp_path / "streamlit.log"
    # The session fixture `settings` exported PULSE_HOME / PULSE_DB_PORT (or PULSE_DATABASE_URL).
    env = {**os.environ, "PULSE_AUTH": "dev"}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(APP),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_for_http(f"{base_url}/_stcore/health", server, log)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_org_admin_signs_in_and_reads_pull_request_figures(streamlit_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    screenshot = tmp_path / "pull_requests.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.set_default_timeout(30_000)
            # The first page render imports the app's stack; allow for a busy 2-core machine.
            expect.set_options(timeout=30_000)
            page.goto(streamlit_server)

            # Streamlit draws after its websocket connects: wait for the sign-in button itself.
            sign_in = page.get_by_role("button", name=f"Sign in as {ADA}")
            expect(sign_in).to_be_visible()
            expect(page.get_by_text("Development sign-in")).to_be_visible()
            page.screenshot(path=str(tmp_path / "sign_in.png"), full_page=True)
            sign_in.click()

            def metric_value(label: str) -> str:
                metric = page.locator('[data-testid="stMetric"]').filter(has_text=label)
                expect(metric).to_have_count(1)
                return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()

            expect(page.get_by_role("heading", name="Pull requests").first).to_be_visible()
            expect(page.locator('[data-testid="stMetric"]')).to_have_count(4)
            assert metric_value("PRs opened") == "5"
            assert metric_value("PRs merged") == "3"
            assert metric_value("Median hours to first review") == "4.0 h"
            assert metric_value("Merged without review") == "33.3 %"

            sidebar = page.locator('[data-testid="stSidebar"]')
            expect(sidebar).to_contain_text("Ada Apptest")
            expect(sidebar).to_contain_text(ADA)
            expect(sidebar).to_contain_text("Role: Org admin")
            expect(sidebar).to_contain_text("Tenant: Acme Apptest")
            expect(page.get_by_text("Last updated: 2026-01-15 08:30 UTC")).to_be_visible()
            expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible()
            expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
            expect(page.get_by_text(f"Sign in as {ADA}")).to_have_count(0)

            # Streamlit scrolls inside its own container: a tall viewport shows the whole page.
            page.set_viewport_size({"width": 1440, "height": 1700})
            page.wait_for_timeout(1_000)  # let the chart and grid finish their first paint
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")
