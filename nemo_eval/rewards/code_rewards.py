"""The code reward: the share of a row's tests that the completion's program passes, run in isolation.

Rows are HumanEval/MBPP-style (the prepared data's fields): the program is found in the completion as
``evaluate`` finds it (``code_grader.extract_code``). With a ``test_list`` column (MBPP: one assert per
test) every assert runs on its own, under its own time limit, and the score is the share that passed;
otherwise (HumanEval's ``test`` + ``check(entry_point)``) the score is 1.0 when the whole test program
passes, exactly ``evaluate``'s verdict, else 0.0. A score of 1.0 is what ``evaluate`` counts correct.
HumanEval's ``prompt`` column (which TRL passes as ``prompts``, not as a column) may also be given as
``code_prompt``.

Programs run in the sandbox service when ``sandbox`` is given and answers; else in local isolated
processes (:class:`LocalRunner`): one fresh process per program, in a bubblewrap jail when one can be
made (no network, read-only system, its own /tmp and process namespace), with limits on address
space, processes (a fork bomb stops there), file size and core files, in its own session, killed with
everything it started at the hard timeout. As root, each concurrent program runs as its own unused
uid (``SLOT_UID_BASE`` + slot), so the process limit applies and one program's fork bomb cannot starve
another's. Without a jail the plain processes keep those limits (announced once by a warning); as root,
every process left under the slot's uid is killed after each program. Not root and no jail: the
process limit counts all the user's processes and a program that leaves its session survives it.

Known limit (as in ``evaluate``'s code grader): the tests run in the candidate's own process, and the
nonce that marks a passed test is a constant of that program, so code written to read its own code
object could print it. A policy is very unlikely to discover that, but a reward is an optimisation
target: for adversarial settings, check a sample of high-reward completions.
"""

from __future__ import annotations

import atexit
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence

from nemo_eval.errors import UserError
from nemo_eval.evaluation.code_grader import build_test_program, extract_code, grade_result, new_nonce, text_for_sandbox
from nemo_eval.evaluation.local_worker import jail_prefix
from nemo_eval.rewards.common import MAX_CHARS, TOO_LONG, GradingStats, Once, completion_text, warn_ungraded
from nemo_eval.sandbox.client import SandboxClient

OUTPUT_LIMIT = 4 << 20   # bytes a program may write (RLIMIT_FSIZE of its output files)


SLOT_UID_BASE = 1 << 20   # as root, each concurrent program runs as its own unused uid: SLOT_UID_BASE + slot


def _as_uid(uid: Optional[int]):
    def apply() -> None:
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    return apply


def _child_limits(memory_mb: int, processes: int, uid: Optional[int]):
    def apply() -> None:   # between fork and exec
        os.setsid()
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))   # counted per uid: one uid per slot
        _as_uid(uid)()
    return apply


def _has_processes(uid: int) -> bool:
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                return True
        except OSError:
            continue
    return False


class LocalRunner:
    """Runs Python programs in isolated child processes; results shaped like the sandbox service's."""

    def __init__(self, workers: int = 0, memory_mb: int = 1024, processes: int = 64) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.memory_mb, self.processes = memory_mb, processes
        self.jail = jail_prefix()
        self.python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nemo-eval-code-reward")
        self.slots: queue.SimpleQueue = queue.SimpleQueue()
        for slot in range(4 * self.workers):   # first in, first out: a used uid rests while others run
            self.slots.put(SLOT_UID_BASE + slot if os.geteuid() == 0 else None)

    def run(self, code: str, timeout: float) -> dict[str, Any]:
        uid = self.slots.get()
        result: dict[str, Any] = {}
        try:
            result = self._run(code, timeout, uid)
            return result
        finally:
            if uid is not None and (not self.jail or result.get("process_status") != "completed"):
                self._kill_all(uid)   # what left the session (or a jail still being torn down), before reuse
            self.slots.put(uid)

    def _kill_all(self, uid: int) -> None:
        """Kill every process running as ``uid`` (``kill(-1)`` from a process of that uid spares only itself)."""
        try:
            subprocess.run([self.python, "-I", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
                           preexec_fn=_as_uid(uid), capture_output=True, check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _has_processes(uid):   # exiting processes (zombies) still count
            time.sleep(0.02)

    def _run(self, code: str, timeout: float, uid: Optional[int]) -> dict[str, Any]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(self.jail + [self.python, "-I", "-"], stdin=subprocess.PIPE, stdout=out,
                                        stderr=err, preexec_fn=_child_limits(self.memory_mb, self.processes, uid),
                                        close_fds=True, cwd="/tmp")
            except OSError as error:
                return {"process_status": "error", "return_code": None, "stdout": "", "stderr": str(error)}
            status = "completed"
            try:
                proc.communicate(code.encode("utf-8", "replace"), timeout=timeout)
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)   # the jail (and its process namespace) or the session
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
            out.seek(0)
            err.seek(0)
            return {"process_status": status, "return_code": proc.returncode,
                    "stdout": out.read(OUTPUT_LIMIT).decode("utf-8", "replace"),
                    "stderr": err.read(OUTPUT_LIMIT)[-2000:].decode("utf-8", "replace")}

    def execute_many(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.pool.map(lambda job: self.run(job["code"], job["timeout"]), jobs))

    def close(self) -> None:
        self.pool.shutdown(wait=False)


def per_test_program(code: str, setup: str, tests: Sequence[str], nonce: str, timeout: float) -> str:
    """A program that runs ``code`` + ``setup``, then each test on its own, printing ``<nonce> <i>`` per pass."""
    return (f"{code}\n\n{setup}\n\n"
            "import os as _ne_os, signal as _ne_signal\n"
            "class _NeTimeout(BaseException):\n    pass\n"
            "def _ne_alarm(*_):\n    raise _NeTimeout()\n"
            f"for _ne_i, _ne_test in enumerate({list(tests)!r}):\n"
            "    try:\n"
            "        _ne_signal.signal(_ne_signal.SIGALRM, _ne_alarm)\n"
            f"        _ne_signal.setitimer(_ne_signal.ITIMER_REAL, {timeout!r})\n"
            "        exec(_ne_test, globals())\n"
            "        _ne_signal.setitimer(_ne_signal.ITIMER_REAL, 0)\n"
            "    except (Exception, SystemExit, _NeTimeout):\n"
            "        _ne_signal.setitimer(_ne_signal.ITIMER_REAL, 0)\n"
            "        continue\n"
            f"    _ne_os.write(1, ('\\n{nonce} %d\\n' % _ne_i).encode())\n")


class CodeReward:
    """TRL-style code reward: ``reward(prompts=None, completions=[...], test_list=[...], entry_point=[...])``.

    A row without tests (a multi-task dataset's rows of another kind) gets None ("does not apply" to TRL);
    a batch in which no row has tests is a ``ValueError`` naming the columns.

    Args:
        sandbox: a sandbox service address; None: local isolated processes.
        timeout: seconds per test (``test_list``) or per test program.
        workers: local processes at once (0: one per core).
        memory_mb: address-space limit of a local process.
        max_chars: longer completions are not run (they score 0 and are counted as too long).
        name: the function name trainers log (``__name__``).
    """

    def __init__(self, sandbox: Optional[str] = None, timeout: float = 10.0, workers: int = 0, memory_mb: int = 1024,
                 max_chars: int = MAX_CHARS, name: str = "code_reward") -> None:
        self.sandbox, self.timeout, self.workers, self.memory_mb = sandbox, timeout, workers, memory_mb
        self.local: Optional[LocalRunner] = None
        self.max_chars = max_chars
        self.lock = threading.Lock()
        self.no_sandbox, self.no_jail = Once(), Once()
        self.stats = GradingStats()
        self.__name__ = name
        atexit.register(self.close)

    def _runner(self) -> LocalRunner:
        with self.lock:
            if self.local is None:
                self.local = LocalRunner(self.workers, self.memory_mb)
                if not self.local.jail:
                    self.no_jail.warn("nemo-eval rewards: no bubblewrap jail can be made here, so code runs in plain "
                                      "child processes (limits on memory, processes and output, own session, hard "
                                      "timeout; no network or file-system isolation); see docs/training.md")
            return self.local

    def _execute(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.sandbox:
            client = SandboxClient(self.sandbox, max_concurrency=16, connect_retries=2, busy_wait=60.0)
            try:
                client.health()
                return client.execute_many(jobs, errors_as_results=True)
            except UserError as error:
                self.no_sandbox.warn(f"nemo-eval rewards: the sandbox at {self.sandbox} cannot run code ({error}); "
                                     "running it in local isolated processes instead")
            finally:
                client.close()
        return self._runner().execute_many(jobs)

    def _job(self, text: str, row: dict[str, Any], nonce: str) -> tuple[dict[str, Any], int]:
        entry_point = str(row.get("entry_point") or "")
        code = extract_code(text, entry_point)
        tests = row.get("test_list")
        if tests:
            tests = [str(test) for test in tests]
            setup = str(row.get("test") or "")
            for test in tests:
                setup = setup.replace(test, "")
            program = per_test_program(code, setup, tests, nonce, self.timeout)
            return {"code": text_for_sandbox(program), "timeout": self.timeout * len(tests) + 5}, len(tests)
        item = {"test": str(row.get("test") or ""), "entry_point": entry_point}
        if row.get("code_prompt") or row.get("prompt"):
            item["prompt"] = str(row.get("code_prompt") or row.get("prompt"))
        return {"code": text_for_sandbox(build_test_program(item, code, nonce)), "timeout": self.timeout}, 0

    def score_rows(self, texts: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[float]:
        """Scores of completions (plain strings), one row of test columns each."""
        for row in rows:
            if not row.get("test_list") and not row.get("test"):
                raise ValueError("code reward: pass a test_list column (MBPP: one assert each) or test + entry_point "
                                 f"(HumanEval); got columns: {', '.join(sorted(row)) or 'none'}")
        nonce = new_nonce()
        runnable = [index for index, text in enumerate(texts) if len(text) <= self.max_chars]
        jobs = [self._job(texts[index], rows[index], nonce) for index in runnable]
        results: list[Optional[dict[str, Any]]] = [None] * len(texts)
        for index, result in zip(runnable, self._execute([job for job, _ in jobs]) if jobs else []):
            results[index] = result
        counts = dict(zip(runnable, (count for _, count in jobs)))
        scores, ungraded = [], {}
        for index, result in enumerate(results):
            count = counts.get(index, 0)
            if result is None:
                ungraded[TOO_LONG] = ungraded.get(TOO_LONG, 0) + 1
                scores.append(0.0)
            elif result.get("process_status") == "error":
                ungraded["sandbox error"] = ungraded.get("sandbox error", 0) + 1
                scores.append(0.0)
            elif count:
                passed = {line.split()[1] for line in (result.get("stdout") or "").splitlines()
                          if line.startswith(nonce + " ") and len(line.split()) == 2}
                scores.append(len(passed) / count)
            else:
                scores.append(1.0 if grade_result(result, nonce)["is_correct"] else 0.0)
        warn_ungraded(self.__name__, len(scores), ungraded, self.stats)
        return scores

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[Optional[float]]:
        completions = list(completions)
        names = [name for name in ("test_list", "test", "entry_point", "code_prompt") if columns.get(name) is not None]
        rows = [{name: columns[name][index] for name in names} for index in range(len(completions))]
        tested = [i for i, row in enumerate(rows) if row.get("test_list") or row.get("test")]
        if rows and not tested:
            self.score_rows([""], [rows[0]])   # raises, naming the columns it needs
        scores: list[Optional[float]] = [None] * len(completions)   # a row without tests: not this reward's
        for index, value in zip(tested, self.score_rows([completion_text(completions[i]) for i in tested],
                                                        [rows[i] for i in tested]) if tested else []):
            scores[index] = value
        return scores

    def score(self, completion: Any, row: dict[str, Any]) -> float:
        """Plain ``fn(completion, row) -> float``: ``row`` holds the test columns."""
        return self.score_rows([completion_text(completion)], [row])[0]

    def close(self) -> None:
        with self.lock:
            if self.local is not None:
                self.local.close()
                self.local = None
