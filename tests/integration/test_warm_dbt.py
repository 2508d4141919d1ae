"""pulse-dbt and the warm dbt server (pulse/warm_dbt.py), with the real dbt and PostgreSQL.

pulse-dbt must be a drop-in ``dbt`` (what Dagster's dbt resource runs): the same output and exit
code, whether a server forks it warm or, with none listening, it runs dbt itself; Dagster
cancelling a run (SIGINT) must stop the query dbt is running; a command whose client was killed
must not run on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pulse.dbt import DBT_PROJECT_DIR, dbt_env
from pulse.warm_dbt import connect

BIN = Path(sys.executable).parent
ANSWER = "select 40 + 2 as answer"
SLEEP_MARK = "pulse_warm_dbt_sleep"
SLEEP = f"select pg_sleep(120) as {SLEEP_MARK}"


@dataclass
class Server:
    process: subprocess.Popen[str]
    socket: Path
    log: Path
    jinja: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt-target")  # shared: each run after the first parses partially


@pytest.fixture()
def server(settings: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("warm")
    socket_file = folder / "dbt.sock"
    log = folder / "server.log"
    env = {**os.environ, "PULSE_DBT_SOCKET": str(socket_file), "PULSE_JINJA_CACHE": str(folder / "jinja")}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(BIN / "pulse"), "dbt-server"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    deadline = time.monotonic() + 60
    while (probe := connect(socket_file)) is None:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server did not listen within 60 s"
        time.sleep(0.1)
    probe.close()
    yield Server(process, socket_file, log, folder / "jinja")
    # still serving after its commands: a child must never end in the server's own code
    assert process.poll() is None, log.read_text()
    still = connect(socket_file)
    assert still is not None, f"the server stopped listening:\n{log.read_text()}"
    still.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not socket_file.exists()  # the server removes its socket as it stops


def dbt_command(executable: str, args: list[str], target: Path) -> list[str]:
    return [str(BIN / executable), *args, "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target)]


def command_env(socket_file: Path) -> dict[str, str]:
    return {**os.environ, **dbt_env(), "PULSE_DBT_SOCKET": str(socket_file), "NO_COLOR": "1"}


def run(executable: str, args: list[str], target: Path, socket_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dbt_command(executable, args, target),
        env=command_env(socket_file),
        capture_output=True,
        text=True,
        timeout=180,
    )


def without_times(output: str) -> list[str]:
    """dbt's lines without their clock and durations."""
    lines = [re.sub(r"^\d\d:\d\d:\d\d\s+", "", line) for line in output.splitlines()]
    return [re.sub(r"in \d+\.\d+ ?s", "in <t>", line) for line in lines if line.strip()]


def test_a_warm_command_answers_as_dbt_does(server: Server, target: Path) -> None:
    args = ["show", "--inline", ANSWER, "--quiet"]
    plain = run("dbt", args, target, server.socket)
    warm = run("pulse-dbt", args, target, server.socket)
    compiled = sorted(server.jinja.iterdir())
    again = run("pulse-dbt", args, target, server.socket)
    assert plain.returncode == warm.returncode == again.returncode == 0, warm.stdout + warm.stderr
    assert "42" in warm.stdout
    assert without_times(warm.stdout) == without_times(plain.stdout) == without_times(again.stdout)
    # each ran in a child of the server, which logs each command and its exit code
    started = [line for line in server.lines() if "dbt show --inline" in line]
    assert len(started) == 2, server.lines()
    pid = re.search(r"\[pid (\d+)\]", started[0]).group(1)  # type: ignore[union-attr]
    assert any(f"[pid {pid}] exit code 0" in line for line in server.lines()), server.lines()
    # the first child kept the templates it compiled (pulse/jinja_cache.py); the second compiled
    # nothing: it read every one back
    assert compiled and sorted(server.jinja.iterdir()) == compiled


def test_a_failing_command_fails_with_dbt_s_exit_code_and_message(server: Server, target: Path) -> None:
    args = ["run-operation", "no_such_macro"]
    plain = run("dbt", args, target, server.socket)
    warm = run("pulse-dbt", args, target, server.socket)
    assert plain.returncode == warm.returncode == 2
    assert "no_such_macro" in warm.stdout + warm.stderr
    assert any("exit code 2" in line for line in server.lines()), server.lines()


def test_with_no_server_pulse_dbt_runs_dbt_itself(settings: object, target: Path, tmp_path: Path) -> None:
    gone = tmp_path / "nobody.sock"
    done = run("pulse-dbt", ["show", "--inline", ANSWER, "--quiet"], target, gone)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "42" in done.stdout
    failed = run("pulse-dbt", ["run-operation", "no_such_macro"], target, gone)
    assert failed.returncode == 2


def sleeping_queries(db_url: str) -> list[int]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        rows = connection.execute(
            "select pid from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
            (f"%{SLEEP_MARK}%",),
        ).fetchall()
    return [row[0] for row in rows]


def wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.2)


def child_pid(server: Server, fragment: str) -> int:
    for line in server.lines():
        if fragment in line and (found := re.search(r"\[pid (\d+)\] dbt ", line)):
            return int(found.group(1))
    raise AssertionError(f"no command with {fragment!r} in the server's log: {server.lines()}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def interruptible() -> None:
    """In the child, before it runs: SIGINT back to its default. A process started from a shell's
    background job (`make test &`, `nohup`) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so plain dbt, the reference here, would not hear the test's SIGINT
    (pulse-dbt and the server set their own handlers)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_sleeping(executable: str, server: Server, target: Path, db_url: str) -> subprocess.Popen[str]:
    """``show`` of a two-minute query, returned once the query runs (none may run before)."""
    assert not sleeping_queries(db_url), "a sleeping query left by an earlier test"
    client = subprocess.Popen(
        dbt_command(executable, ["show", "--inline", SLEEP], target),
        env=command_env(server.socket),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
    )
    wait_for(lambda: sleeping_queries(db_url), 90, "the query started")
    return client


def interrupted(client: subprocess.Popen[str], db_url: str) -> tuple[int, str]:
    """SIGINT, as Dagster sends to cancel a run's dbt: the exit code and output, once the query
    is gone (a client that does not end in time is killed, its query cancelled: the next test
    starts clean)."""
    client.send_signal(signal.SIGINT)
    try:
        output, _ = client.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        client.kill()
        client.communicate()
        with psycopg.connect(db_url, autocommit=True) as connection:
            for pid in sleeping_queries(db_url):
                connection.execute("select pg_cancel_backend(%s)", (pid,))
        raise
    wait_for(lambda: not sleeping_queries(db_url), 30, "the query cancelled")
    return client.returncode, output


def test_sigint_to_the_client_cancels_the_query_dbt_runs(server: Server, target: Path, db_url: str) -> None:
    plain_code, plain_output = interrupted(start_sleeping("dbt", server, target, db_url), db_url)
    client = start_sleeping("pulse-dbt", server, target, db_url)
    child = child_pid(server, SLEEP_MARK)
    code, output = interrupted(client, db_url)
    # dbt's own answer to an interrupt, passed on: not the client dying of it, nor the orphan path
    assert code == plain_code != 0, (plain_output, output)
    assert "Exited because of keyboard interrupt" in output and "without an exit code" not in output, output
    assert any(f"[pid {child}] exit code {plain_code}" in line for line in server.lines()), server.lines()
    wait_for(lambda: not alive(child), 30, "dbt's process gone")


def test_a_command_whose_client_is_killed_stops(server: Server, target: Path, db_url: str) -> None:
    client = start_sleeping("pulse-dbt", server, target, db_url)
    child = child_pid(server, SLEEP_MARK)
    client.kill()  # SIGKILL: the client cannot say anything
    client.wait(10)
    wait_for(lambda: not sleeping_queries(db_url), 60, "the query cancelled")
    wait_for(lambda: not alive(child), 60, "dbt's process gone")
    assert client.stdout is not None
    client.stdout.close()


def test_dagster_s_dbt_resource_streams_events_through_the_server(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Dagster's dbt steps run (orchestration/defs/resources.py): its events come from
    dbt's JSON log lines on the client's stdout, written there by the server's child."""
    from dagster import AssetMaterialization
    from dagster_dbt import DbtCliResource

    from pulse.dbt import manifest_path

    for name, value in {**dbt_env(), "PULSE_DBT_SOCKET": str(server.socket)}.items():
        monkeypatch.setenv(name, value)
    resource = DbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=str(BIN / "pulse-dbt"))
    invocation = resource.cli(["seed", "--select", "model_prices"], manifest=manifest_path())
    # outside an asset's run, dagster-dbt reports each node built as a materialization
    built = [event for event in invocation.stream() if isinstance(event, AssetMaterialization)]
    assert invocation.is_successful()
    assert [event.asset_key.path[-1] for event in built] == ["model_prices"]
    assert built[0].metadata["unique_id"].value == "seed.pulse.model_prices"
    assert any("] dbt seed --select model_prices" in line for line in server.lines()), server.lines()
