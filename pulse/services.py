"""Long-running child services (Dagster, Streamlit): started in their own session, stopped by pid.

A backgrounded ``dagster dev`` ignores SIGINT/SIGTERM unless started with the default handlers
restored, so children get them back, and are stopped through their process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from pulse.settings import PROJECT_ROOT


def start_service(argv: list[str], env: dict[str, str], logfile: Path) -> subprocess.Popen[bytes]:
    """Start a long-running child in its own session with default signal handling."""

    def restore_signals() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    handle = open(logfile, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    return subprocess.Popen(
        argv,
        env=env,
        cwd=PROJECT_ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        preexec_fn=restore_signals,
        start_new_session=True,
    )


def stop_service(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass
