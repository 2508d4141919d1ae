"""A warm dbt: each ``dbt`` command forked from a process that has imported dbt already.

Every ``dbt build`` is a new Python process, and before it reads a file it imports dbt, its
adapter and their dependencies (about 1.7 s on 2 cores), then compiles every Jinja template it
uses from source (about 1.7 s more): together a third of a build with nothing new, where dbt's
own Python is what bounds a build (docs/scaling.md). The server here imports dbt once and then
waits on a Unix socket; for each command it forks a child, which is that command's dbt process:
it takes the caller's standard input, output and error (the descriptors themselves, passed over
the socket), working directory, environment, umask and arguments, and runs dbt's own command
line (``dbt.cli.main.cli``) as the ``dbt`` executable would. The server never runs a dbt command
itself, so each child starts from dbt's state right after import, as a new process does. Every
dbt command ``pulse-dbt`` runs, warm or not, keeps compiled templates on disk
(pulse/jinja_cache.py).

The client (``pulse-dbt``, what Dagster's dbt resource runs) is a drop-in ``dbt``: the same
arguments, output on the same descriptors, the same exit code. A signal it gets (Dagster
cancelling a run sends SIGINT) goes on to the child; a child whose client has gone is
interrupted. With no server listening (or one it may not use) it runs dbt in its own process,
so the server only ever saves time.

    pulse dbt-server                 # the server (``pulse demo`` starts one)
    pulse-dbt build --select ...     # as ``dbt build --select ...``

The socket is ``$PULSE_HOME/run/dbt.sock`` unless ``PULSE_DBT_SOCKET`` names another; only its
owner may connect (a command runs as the server's user), and the client runs dbt itself rather
than hand its environment to a server of another user. The template cache is
``$PULSE_HOME/cache/jinja`` unless ``PULSE_JINJA_CACHE`` names another (a forked command uses
the server's). What a child does not take from its caller: the server's Python (its ``sys.path``,
the dbt it imported: restart the server after upgrading dbt) and its standard streams' encoding.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import json
import os
import shlex
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

#: What a ``dbt build`` on PostgreSQL imports, loaded once by the server.
PRELOAD = (
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "dbt.adapters.postgres.impl",
    "dbt.task.build",
    "dbt.task.run",
    "dbt.task.test",
    "dbt.task.seed",
    "dbt.task.compile",
    "dbt.task.list",
    "dbt.task.run_operation",
    "dbt.parser.manifest",
    "dbt.context.providers",
    "dbt.compilation",
    "psycopg2",
)

#: What stops the server (and, with their default handling, a child).
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
#: How long a child whose client went away has after SIGINT before it ends itself.
ORPHAN_GRACE_SECONDS = 30.0
#: The largest request line (arguments and environment) a child reads.
MAX_REQUEST_BYTES = 1 << 20
#: A Unix socket's path holds at most this many bytes (Linux: 108 with the final NUL; macOS: 104).
MAX_SOCKET_PATH_BYTES = 103


def pulse_home() -> Path:
    from pulse.settings import get_settings

    return get_settings().home


def socket_path() -> Path:
    """Where the server listens: ``PULSE_DBT_SOCKET``, else ``$PULSE_HOME/run/dbt.sock``, or, when
    that is too long for a socket, a name in the temporary folder derived from the home."""
    if explicit := os.environ.get("PULSE_DBT_SOCKET"):
        return Path(explicit)
    home = pulse_home()
    path = home / "run" / "dbt.sock"
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH_BYTES:
        return path
    import hashlib
    import tempfile

    return Path(tempfile.gettempdir()) / f"pulse-dbt-{hashlib.sha256(os.fsencode(home)).hexdigest()[:16]}.sock"


def jinja_cache_dir() -> Path:
    """Where dbt processes keep compiled templates: ``PULSE_JINJA_CACHE``, else
    ``$PULSE_HOME/cache/jinja``."""
    if explicit := os.environ.get("PULSE_JINJA_CACHE"):
        return Path(explicit)
    return pulse_home() / "cache" / "jinja"


# -- the server -------------------------------------------------------------------------------


def serve(path: Path, cache_dir: Path, *, preload: Sequence[str] = PRELOAD) -> None:
    """Import dbt, listen on ``path`` and fork one child per command until SIGINT or SIGTERM.
    The server itself stays one thread: forking a process while another thread of it holds a
    lock would copy that lock held, forever."""
    import importlib

    from pulse import jinja_cache

    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise SystemExit(
            f"the socket path {path} is longer than a Unix socket's {MAX_SOCKET_PATH_BYTES} bytes: "
            "set PULSE_DBT_SOCKET to a shorter one"
        )
    for module in preload:
        importlib.import_module(module)
    jinja_cache.install(cache_dir)
    if (running := connect(path)) is not None:
        running.close()
        raise SystemExit(
            f"a warm dbt server already listens on {path}: use it, stop it first, or give this one "
            "another PULSE_DBT_SOCKET"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)  # a stale socket: nobody answered on it
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket file: its owner alone may connect
    try:
        server.bind(str(path))
    finally:
        os.umask(old_umask)
    ours = os.stat(path).st_ino
    server.listen(64)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # the kernel reaps the children; their exit codes travel over their connections
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print(f"warm dbt: listening on {path} (pid {os.getpid()})", flush=True)
    try:
        while True:
            try:
                connection, _ = server.accept()
            except OSError as error:  # out of descriptors, say: the next command may find some
                print(f"warm dbt: could not accept a command: {error}", flush=True)
                time.sleep(0.5)
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            # no stop signal between the fork and the child's own handlers: the server's would
            # raise in the child, in this loop
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                pid = os.fork()
            except OSError as error:  # the client, told nothing, runs dbt itself
                print(f"warm dbt: could not fork for a command: {error}", flush=True)
                pid = -1
            if pid == 0:
                child(server, connection)  # never returns
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            connection.close()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == ours:  # not another server's, started since
                path.unlink()


def child(server: socket.socket, connection: socket.socket) -> NoReturn:
    """A forked child's life: the command, then the exit a process's end would make (its atexit
    functions: multiprocessing releases its semaphores there). Whatever happens (an interrupt
    arriving late, an error of this module's), it never returns into the server's loop, whose
    ``finally`` would remove the server's socket."""
    code = 70  # EX_SOFTWARE: the command did not get as far as an exit code
    try:
        server.close()
        for number, handler in (
            (signal.SIGCHLD, signal.SIG_DFL),
            (signal.SIGTERM, signal.SIG_DFL),
            (signal.SIGINT, signal.default_int_handler),
        ):
            signal.signal(number, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        code = run_command(connection)
        atexit._run_exitfuncs()
    except BaseException as error:  # noqa: BLE001 - reported, and the process ends below either way
        with contextlib.suppress(BaseException):
            print(f"warm dbt: [pid {os.getpid()}] {type(error).__name__}: {error}", file=sys.__stderr__, flush=True)
    finally:
        os._exit(code)


def receive_request(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request (one JSON line) and the descriptors sent with it."""
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(MAX_REQUEST_BYTES, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    while not data.endswith(b"\n"):
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError(f"a request longer than {MAX_REQUEST_BYTES} bytes")
        more = connection.recv(MAX_REQUEST_BYTES)
        if not more:
            if data:
                raise ValueError("the client closed the connection before its request ended")
            raise ConnectionError("the client sent nothing")
        data += more
    return json.loads(data), list(fds)


def run_command(connection: socket.socket) -> int:
    """In a forked child: become the command's dbt process and run it; its exit code. The
    server's log gets a line as it starts and one as it ends."""
    log = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)  # the server's stdout
    pid = os.getpid()

    def note(line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a log nobody reads fails no command
            print(f"warm dbt: [pid {pid}] {line}", file=log)

    try:
        request, fds = receive_request(connection)
    except ConnectionError:
        return 0  # connected and went: someone looking whether the server listens
    except (ValueError, OSError) as error:
        note(f"a bad request: {error}")
        return 2
    if len(fds) != 3:
        note(f"a bad request: {len(fds)} descriptors, not stdin, stdout and stderr")
        return 2
    note(f"dbt {shlex.join(request['args'])}")
    started = time.monotonic()
    try:
        connection.sendall(json.dumps({"started": pid}).encode() + b"\n")
    except OSError:
        return 0  # the client went before its command started
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()  # the client's TZ
    finished = threading.Event()
    threading.Thread(target=follow_client, args=(connection, finished), daemon=True).start()
    code = 130  # what an interrupt arriving as dbt returns leaves
    try:
        code = run_dbt(request["args"])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finished: a late interrupt changes nothing
        finished.set()
        with contextlib.suppress(OSError):  # the client has gone: nobody is left to tell
            connection.sendall(json.dumps({"exit": code}).encode() + b"\n")
        note(f"exit code {code} after {time.monotonic() - started:.1f} s")
    return code


def follow_client(connection: socket.socket, finished: threading.Event) -> None:
    """Pass the client's signals on to this process while its command runs; interrupt the
    command when the client goes before it has finished."""
    for line in connection.makefile("rb"):
        message = json.loads(line)
        if "signal" in message and not finished.is_set():
            os.kill(os.getpid(), int(message["signal"]))
    if finished.is_set():
        return  # the client read its exit code and left
    # the client has gone (killed, or its connection lost): stop as a cancelled dbt run does,
    # interrupted again if the first interrupt fell where dbt did not act on it
    os.kill(os.getpid(), signal.SIGINT)
    threading.Timer(ORPHAN_GRACE_SECONDS / 3, os.kill, args=(os.getpid(), signal.SIGINT)).start()
    threading.Timer(ORPHAN_GRACE_SECONDS, os._exit, args=(130,)).start()


# -- a dbt command, in whichever process runs it ---------------------------------------------


def run_dbt(args: Sequence[str]) -> int:
    """dbt's command line with ``args``, as the ``dbt`` executable runs it; its exit code."""
    from dbt.cli.main import cli

    from pulse import jinja_cache

    jinja_cache.install(jinja_cache_dir())  # installed already in a child of the server
    sys.argv = ["dbt", *args]
    code: int
    try:
        cli.main(args=list(args), prog_name="dbt")
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


# -- the client -------------------------------------------------------------------------------


def connect(path: Path) -> socket.socket | None:
    """A connection to the server, or None when none listens there that this user may use."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:  # no socket file, a stale one (refused), another user's (permission)
        connection.close()
        return None
    return connection


def peer_is_this_user(connection: socket.socket) -> bool:
    """Whether the process listening is this user's (Linux tells; elsewhere the socket file's
    mode, owner only, is what guards it)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return uid == os.getuid()


def client(args: Sequence[str]) -> int:
    """Run ``dbt <args>`` in a child of the warm server, or here when none listens (or it cannot
    start the command); its exit code."""
    connection = connect(socket_path())
    if connection is None:
        return run_dbt(args)
    replies = connection.makefile("rb")
    try:
        if not peer_is_this_user(connection):
            raise PermissionError(f"the process listening on {socket_path()} is another user's")
        umask = os.umask(0)
        os.umask(umask)
        request = json.dumps({"args": list(args), "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask})
        data = request.encode() + b"\n"
        sent = connection.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
        connection.sendall(data[sent:])
        started = replies.readline()
    except OSError as error:
        started, problem = b"", str(error)
    else:
        problem = "it did not start the command"
    if not started:
        print(f"pulse-dbt: not using the warm dbt server ({problem}); running dbt here", file=sys.stderr)
        connection.close()
        return run_dbt(args)

    def forward(number: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            connection.sendall(json.dumps({"signal": number}).encode() + b"\n")

    for number in STOP_SIGNALS:
        signal.signal(number, forward)
    reply = replies.readline()
    if not reply.endswith(b"\n"):
        print(
            "pulse-dbt: the warm dbt server's child for this command ended without an exit code "
            "(killed?); see the server's log",
            file=sys.stderr,
        )
        return 1
    return int(json.loads(reply)["exit"])


def main() -> None:
    """``pulse-dbt ARGS``: ``dbt ARGS``, warm when the server listens."""
    sys.exit(client(sys.argv[1:]))


if __name__ == "__main__":
    main()
