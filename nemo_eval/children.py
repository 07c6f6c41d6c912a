"""Child processes that never outlive the run that started them, however it ends (``kill -9`` included).

Three layers, each enough on its own for the common case:

1. every child gets ``PR_SET_PDEATHSIG`` (:func:`die_with_parent`): the kernel signals it when the
   thread that started it dies. Long-lived children (sandbox, server) are therefore started from the
   main thread; steps from pool threads that outlive them;
2. every child carries ``NEMO_EVAL_RUN_ID=<run id>`` in its environment, which its own descendants
   inherit, and runs as its own process group; a child that starts children of its own gives them a
   nested id (``<run id>/<role>-<pid>``, :func:`nested_run_id`);
3. a :class:`RunWatchdog` (``nemo_eval/watchdog.py``, a tiny process in its own session) holds the
   read end of a pipe only the launcher writes to. When the launcher dies the kernel closes the pipe;
   the watchdog then ends every registered process group, every process carrying the run id, and
   every registered (or run-labelled) Docker container: SIGTERM, a grace period, SIGKILL.

Without ``prctl`` (not Linux) layer 1 is skipped, and said so once on stderr.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Optional

RUN_ID_ENV = "NEMO_EVAL_RUN_ID"
WATCHDOG_FILE = Path(__file__).resolve().parent / "watchdog.py"
PR_SET_PDEATHSIG = 1
_warned = threading.Event()


def new_run_id() -> str:
    """A run id unique across hosts and time: ``<host>-<pid>-<random>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def nested_run_id(role: str) -> str:
    """The run id for the children of a process that is itself part of a run (a step launching a server,
    the Slurm client step): ``<its run id>/<role>-<pid>``, so that the outer run's watchdog still finds
    them while this process's own watchdog ends only its own children. A fresh id outside any run."""
    parent = os.environ.get(RUN_ID_ENV)
    return f"{parent}/{role}-{os.getpid()}" if parent else new_run_id()


def _prctl() -> Optional[Callable[..., int]]:
    try:
        function = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        if not _warned.is_set():
            _warned.set()
            print("nemo-eval: warning: no prctl here, so child processes are not tied to this process's life; "
                  "the run watchdog still ends them", file=sys.stderr)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    function.restype = ctypes.c_int
    return function


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` making the child receive ``sig`` when its parent (thread) dies."""
    prctl = _prctl()  # resolved here, in the parent: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(128 + sig)

    return preexec


def spawn(command: list[str], log_path: Path, env: dict[str, str], sig: int = signal.SIGTERM) -> subprocess.Popen:
    """Start ``command`` as its own process group tied to this process's life, output appended to ``log_path``.

    Raises:
        OSError: The command cannot be run (missing interpreter or executable).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, preexec_fn=die_with_parent(sig))


class RunWatchdog:
    """The watchdog of one run; register what the run starts, :meth:`close` when the run is over.

    Args:
        run_id: The run's id (the value of ``NEMO_EVAL_RUN_ID`` in its children's environment).
        grace: Seconds between SIGTERM and SIGKILL once the run is over.
    """

    def __init__(self, run_id: str, grace: float = 20.0) -> None:
        self.run_id = run_id
        self._lock = threading.Lock()
        env = {k: v for k, v in os.environ.items() if k != RUN_ID_ENV}
        self.process = subprocess.Popen([sys.executable, "-I", "-S", str(WATCHDOG_FILE), run_id, f"{grace:g}"],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env=env, start_new_session=True)

    def _send(self, line: str) -> None:
        with self._lock:
            stdin = self.process.stdin
            if stdin is None or stdin.closed:
                return
            try:
                stdin.write(line.encode() + b"\n")
                stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

    def watch_group(self, pgid: int) -> None:
        """End this process group when the run is over."""
        self._send(f"group {pgid}")

    def watch_container(self, container_id: str) -> None:
        """Remove this Docker container when the run is over."""
        self._send(f"container {container_id}")

    def close(self) -> None:
        """The run is over: the watchdog ends what is left, in the background (this returns at once)."""
        with self._lock:
            if self.process.stdin is not None and not self.process.stdin.closed:
                try:
                    self.process.stdin.close()
                except BrokenPipeError:
                    pass

    def wait(self, timeout: Optional[float] = None) -> None:
        """Wait until the watchdog finished (tests, and callers that must not return before)."""
        self.close()
        self.process.wait(timeout)


def run_environment(base: dict[str, str], run_id: str) -> dict[str, str]:
    """``base`` plus the run id marker every child and its descendants carry."""
    return {**base, RUN_ID_ENV: run_id}
