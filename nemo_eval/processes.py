"""Process and service helpers shared by every stage: free ports, health polling, process-group
termination, log tails.

The launched inference server (``inference/server``), the eval launcher's services and steps
(``pipeline``), the Slurm worker, the tests and the performance scripts (``perf/``) all use these;
nothing here knows about servers, sandboxes or runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers_ok(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers HTTP 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def poll_until_healthy(url: str, timeout: float, exit_code: Callable[[], Optional[int]] = lambda: None,
                       interval: float = 0.25) -> Optional[str]:
    """Poll ``url`` until it answers 200: None then, ``"exited"`` once ``exit_code()`` is not None
    (the thing being waited for died), ``"timeout"`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if exit_code() is not None:
            return "exited"
        if answers_ok(url):
            return None
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(interval)


def signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group ``process`` leads (started with ``start_new_session``)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` s for its leader, then SIGKILL what is left of the group."""
    if process.poll() is None:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    signal_group(process, signal.SIGKILL)
    process.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (``(no log)`` when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
