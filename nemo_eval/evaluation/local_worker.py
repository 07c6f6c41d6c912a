"""Long-lived isolated processes that decide math equivalence, for callers without a sandbox service.

Each worker runs the grading program (``math_grader.grading_program``) with ``--serve``: one
request per line on stdin, verdict lines on stdout. It is a separate process, never our own, with
hard limits:

- inside a bubblewrap jail when ``bwrap`` works here (no network, a read-only view of the system,
  its own /tmp); else a plain child process;
- an address-space limit (``memory_mb``), no core files, its own session, and it dies with us
  (``PR_SET_PDEATHSIG`` on Linux);
- a hard deadline per request: a pair that ignores the program's own timer (stuck in C code) gets
  the process killed; its verdict is ``T``, the worker restarts and the rest of the pairs are sent
  again (the same protocol as the sandbox batches).

The Python that runs it is the one running nemo-eval (its sympy is a core dependency), so verdicts
match what this environment's sympy computes; another program speaking the same protocol can be run
under another Python (``lm_eval_math`` runs lm-eval's scores so). :class:`WorkerPool` spreads pairs
over several workers.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from nemo_eval.evaluation.math_grader import batches, decide_in_batches, grading_program, parse_verdicts

# called with each request's output, its nonce and its items, for programs that print more than verdicts
OutputHook = Callable[[str, str, list], None]


def _limits(memory_mb: int):
    def apply() -> None:   # in the child between fork and exec: nothing that allocates after the limit
        os.setsid()
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the process that started it
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        libc = None
    return apply


def jail_prefix() -> list[str]:
    """A bubblewrap command prefix when an unprivileged jail works here, else ``[]``."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return []
    prefix = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--dev", "/dev",
              "--proc", "/proc", "--tmpfs", "/tmp", "--"]
    try:
        probe = subprocess.run(prefix + [sys.executable, "-c", "pass"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return prefix if probe.returncode == 0 else []


class LocalWorker:
    """One grading process; :meth:`run` sends one request and reads its verdicts.

    Args:
        timeout: Seconds per comparison.
        memory_mb: The process's address-space limit.
        jail: The bubblewrap prefix (None: probe for one).
        spawner: Runs the start of the process; the kernel ties the process to the life of the thread
            that starts it, so a pool starts its workers from one long-lived thread of its own.
    """

    def __init__(self, timeout: float = 10.0, memory_mb: int = 2048, jail: Optional[list[str]] = None,
                 spawner: Optional[ThreadPoolExecutor] = None, program: Optional[str] = None,
                 python: Optional[str] = None, on_output: Optional[OutputHook] = None) -> None:
        self.timeout, self.memory_mb = timeout, memory_mb
        self.jail = jail_prefix() if jail is None else jail
        self.program = program or grading_program()
        self.python = python or sys.executable
        self.on_output = on_output
        self.spawner = spawner
        self.proc: Optional[subprocess.Popen] = None

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            command = self.jail + [self.python, "-I", "-c", self.program, "--serve"]

            def start() -> subprocess.Popen:
                return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, bufsize=0, preexec_fn=_limits(self.memory_mb),
                                        close_fds=True)
            self.proc = self.spawner.submit(start).result() if self.spawner else start()
        return self.proc

    def decide(self, pairs: list) -> list[str]:
        return decide_in_batches(pairs, self.run)

    def run(self, pairs: list, nonce: str) -> tuple[dict[int, str], bool, Optional[str]]:
        """Send one request; ``(verdicts, yielded, failure)`` as :func:`decide_in_batches` expects."""
        proc = self._start()
        request = {"nonce": nonce, "timeout": self.timeout, "pairs": [list(pair) for pair in pairs]}
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode("utf-8", "surrogatepass"))
        except (BrokenPipeError, OSError):
            self.close()
            return {}, False, "the worker died"
        output, failure = b"", None
        done = f"{nonce} done\n".encode()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 2 * self.timeout + 3   # per pair: renewed whenever a verdict arrives
        try:
            while not output.endswith(done):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failure = "timeout"
                    break
                if not selector.select(timeout=remaining):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    failure = "the worker died"
                    break
                output += chunk
                deadline = time.monotonic() + 2 * self.timeout + 3
        finally:
            selector.close()
        if failure:
            self.close()
        text = output.decode("utf-8", "replace")
        if self.on_output is not None:
            self.on_output(text, nonce, pairs)
        found, yielded = parse_verdicts(text, nonce, len(pairs))
        return found, yielded, failure

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass


class WorkerPool:
    """Several :class:`LocalWorker` processes; pairs are split into one batch per worker.

    ``program``, ``python`` and ``on_output`` are passed to each worker (default: the math grading
    program under this Python).
    """

    def __init__(self, workers: int = 0, timeout: float = 10.0, memory_mb: int = 2048, program: Optional[str] = None,
                 python: Optional[str] = None, on_output: Optional[OutputHook] = None) -> None:
        self.size = workers or max(1, min(4, os.cpu_count() or 1))
        jail = jail_prefix()
        self.spawner = ThreadPoolExecutor(1, thread_name_prefix="nemo-eval-grading-workers")
        self.workers = [LocalWorker(timeout, memory_mb, jail, self.spawner, program, python, on_output)
                        for _ in range(self.size)]
        self.lock = threading.Lock()

    def decide(self, pairs: list) -> list[str]:
        if not pairs:
            return []
        with self.lock, ThreadPoolExecutor(self.size) as pool:
            groups = batches(pairs, self.size, max(1, len(pairs)))
            decided = pool.map(lambda item: item[0].decide(item[1]), zip(self.workers, groups))
            return [verdict for group in decided for verdict in group]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.spawner.shutdown(wait=False)
