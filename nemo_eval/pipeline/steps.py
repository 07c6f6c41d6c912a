"""What the launcher runs, independent of where: the job description and running its steps.

:class:`EvalJob` is everything decided before anything starts (also written as JSON for Slurm jobs).
:class:`StepRunner` runs steps, each with a log file: generation as child processes (each its own
process group, tied to the launcher's life and registered with the run's watchdog), grading in this
process (it is mostly waiting for the sandbox); it records failures with their log, runs the
generate + evaluate pairs of many runs concurrently, and can end every running step at once.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from nemo_eval.children import RunWatchdog, spawn
from nemo_eval.errors import UserError
from nemo_eval.overrides import hydra_value
from nemo_eval.processes import signal_group
from nemo_eval.run_layout import LOGS_DIR, output_path, run_label

PYTHON = [sys.executable, "-m"]


@dataclass
class EvalJob:
    """Everything the launcher decided, before running anything."""

    output_dir: Path
    runs: list[tuple[str, Optional[int]]]
    model: Optional[str] = None
    server_type: str = "openai"
    server_address: Optional[str] = None
    server_gpus: int = 0
    server_nodes: int = 1
    num_jobs: int = 1
    generation_overrides: list[str] = field(default_factory=list)
    evaluation_overrides: list[str] = field(default_factory=list)

    env_vars: dict[str, str] = field(default_factory=dict)
    python: list[str] = field(default_factory=lambda: list(PYTHON))
    server_args: str = ""
    server_startup_timeout: float = 1800.0
    code_execution: bool = False  # generation runs code in the sandbox

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "output_dir": str(self.output_dir)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "EvalJob":
        data: dict[str, Any] = json.loads(text)
        data["output_dir"] = Path(data["output_dir"])
        data["runs"] = [tuple(run) for run in data["runs"]]
        return cls(**data)

    @property
    def logs(self) -> Path:
        return self.output_dir / LOGS_DIR

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.runs))

    def benchmarks_spec(self) -> str:
        """The runs as ``--benchmarks`` says them: ``gsm8k:2,humaneval:0``."""
        return ",".join(f"{b}:{sum(1 for name, seed in self.runs if name == b and seed is not None)}"
                        for b in self.benchmarks())

    def summarize_command(self) -> list[str]:
        return self.python + ["nemo_eval.metrics.summarize_results", str(self.output_dir),
                              "--benchmarks", self.benchmarks_spec()]

    def generate_command(self, benchmark: str, seed: Optional[int], base_url: str, sandbox: str) -> list[str]:
        command = self.python + ["nemo_eval.inference.generate", f"++benchmark={benchmark}",
                                 f"++output_dir={hydra_value(str(self.output_dir))}",
                                 f"++server.base_url={hydra_value(base_url)}"]
        if sandbox:
            command.append(f"++code_execution.sandbox_address={hydra_value(sandbox)}")
        if self.model and self.server_address:
            command.append(f"++server.model={hydra_value(self.model)}")
        if seed is not None:
            command.append(f"++inference.random_seed={seed}")
        return command + self.generation_overrides

    def evaluate_command(self, benchmark: str, seed: Optional[int], sandbox: str) -> list[str]:
        path = output_path(self.output_dir, benchmark, seed)
        return self.python + ["nemo_eval.evaluation.evaluate", f"++prediction_jsonl_files=[{hydra_value(str(path))}]",
                              f"++sandbox_address={hydra_value(sandbox)}"] + self.evaluation_overrides


PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\|\s*\d+/\d+ \[")


def last_message(log: Path) -> str:
    """The last line of a step's log that says something: not a progress-bar update, not the command line."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    for line in reversed(re.split(r"[\r\n]+", text)):
        line = line.strip()
        if line and not line.startswith("$ ") and not PROGRESS_BAR.search(line):
            return line[:300]
    return "(the log is empty)"


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory? see dmesg)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"failed (exit {code})"


class StepRunner:
    """Runs steps (child processes, each its own process group, or functions here) and remembers failures.

    Args:
        env: Environment of the child steps.
        watchdog: The run's watchdog (every child's group is registered with it); None: no watchdog.
    """

    def __init__(self, env: dict[str, str], watchdog: Optional[RunWatchdog] = None) -> None:
        self.env = env
        self.watchdog = watchdog
        self.failures: list[str] = []
        self.service_error: Optional[UserError] = None  # the sandbox or server could not start
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, command: list[str], log_path: Path, service: bool = False) -> subprocess.Popen:
        """Start a child (its own group, SIGTERM from the kernel if this thread dies). A ``service`` (sandbox,
        server) is only registered with the watchdog: its owner stops it, and :meth:`stop_all` does not wait."""
        try:
            proc = spawn(command, log_path, self.env)
        except OSError as exc:
            raise UserError(f"cannot run {command[0]}: {exc.strerror}; check the python setting of the cluster "
                            "config") from None
        self.track(proc, service)
        return proc

    def track(self, proc: subprocess.Popen, service: bool = False) -> None:
        """Register ``proc`` with the watchdog and, unless a ``service``, count it among the running steps."""
        if self.watchdog is not None:
            self.watchdog.watch_group(proc.pid)
        if not service:
            with self._lock:
                self._running.add(proc)

    def run(self, command: list[str], log_path: Path) -> int:
        proc = self.start(command, log_path)
        try:
            return proc.wait()
        finally:
            with self._lock:
                self._running.discard(proc)

    def step(self, name: str, command: list[str], log: Path) -> bool:
        """Run one child step to its end; on failure record how it ended, its last message and its log."""
        code = self.run(command, log)
        if code != 0 and not self._stopping.is_set():
            self.fail(f"step '{name}' {_exit_description(code)}: {last_message(log)}; log: {log}")
        return code == 0

    def in_process(self, name: str, function: Callable[[], str], log: Path) -> bool:
        """Run one step here: ``function`` returns the line for its log; errors are recorded like a child's."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"$ {name} (in the launcher's process)\n")
            try:
                handle.write(function() + "\n")
                return True
            except UserError as exc:
                message = " ".join(str(exc).split())
                handle.write(f"error: {message}\n")
                self.fail(f"step '{name}' failed: {message[:300]}; log: {log}")
            except Exception as exc:  # noqa: BLE001 - a bug: its traceback goes to the step's log
                handle.write(traceback.format_exc())
                self.fail(f"step '{name}' failed with an internal error ({type(exc).__name__}: {exc}); log: {log}")
        return False

    def fail(self, line: str) -> None:
        with self._lock:
            self.failures.append(line)

    def generate_and_grade(self, job: EvalJob, runs: list[tuple[str, Optional[int]]], server: Callable[[], str],
                           sandbox: Callable[[], str], parallel: int,
                           grade: Callable[[Path, str], str],
                           needs_generation: Callable[[str, Optional[int]], bool] = lambda b, s: True) -> None:
        """For every run: generate (a child step), then grade (``grade(file, sandbox address)``, here);
        ``parallel`` runs at once. ``server()`` and ``sandbox()`` block until those are healthy and are
        only called by runs that need them. Ctrl-C/SIGTERM end every running step."""

        def one_run(run: tuple[str, Optional[int]]) -> None:
            if self._stopping.is_set():
                return
            benchmark, seed = run
            label = run_label(benchmark, seed)
            if needs_generation(benchmark, seed):
                try:
                    base_url = server()
                except UserError as exc:
                    self._service_failed(exc)
                    return
                command = job.generate_command(benchmark, seed, base_url, sandbox_for_generation())
                if not self.step(f"generate {label}", command, job.logs / f"generate-{label}.log"):
                    return
            if self._stopping.is_set():
                return
            path = output_path(job.output_dir, benchmark, seed)
            try:
                address = sandbox_when_needed(path)
            except UserError as exc:
                self._service_failed(exc)
                return
            if self.in_process(f"evaluate {label}", lambda: grade(path, address), job.logs / f"evaluate-{label}.log"):
                print(f"nemo-eval: {label} generated and graded", file=sys.stderr, flush=True)

        def sandbox_for_generation() -> str:
            return sandbox() if job.code_execution else ""

        def sandbox_when_needed(path: Path) -> str:
            from nemo_eval.pipeline.run_state import fully_graded

            return "" if fully_graded(path, job.evaluation_overrides) else sandbox()

        pool = ThreadPoolExecutor(parallel, thread_name_prefix="run")
        try:
            list(pool.map(one_run, runs))
        except BaseException:  # Ctrl-C / SIGTERM: end the running steps so their threads return
            self._stopping.set()
            self.stop_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _service_failed(self, exc: UserError) -> None:
        """The sandbox or server could not start: one line for it, and the other runs stop."""
        with self._lock:
            self._stopping.set()
            if self.service_error is None:
                self.service_error = exc
        self.stop_all(wait=False)

    def report(self) -> int:
        """Print the failures; the exit code (1 when any step failed)."""
        for line in self.failures:
            print(f"nemo-eval: {line}", file=sys.stderr)
        return 1 if self.failures else 0

    def stop_all(self, grace: float = 15.0, wait: bool = True) -> None:
        """SIGTERM every running child; with ``wait``, SIGKILL what is left after ``grace`` seconds
        (without, the run's watchdog does that once the launcher is gone)."""
        with self._lock:
            procs = [p for p in self._running if p.poll() is None]
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        if not wait:
            return
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()
