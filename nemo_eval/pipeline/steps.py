"""What the launcher runs, independent of where: the job description and running steps as child processes.

:class:`EvalJob` is everything decided before anything starts (also written as JSON for Slurm jobs).
:class:`StepRunner` runs steps as child processes (each its own process group, with a log file),
records failures with their log, runs the generate + evaluate pairs of many runs concurrently, and
can end every running step at once (teardown).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.inference.server.launcher import log_tail, signal_group
from nemo_eval.inference.config import output_name
from nemo_eval.overrides import hydra_value

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
        return self.output_dir / "logs"

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.runs))

    def benchmarks_spec(self) -> str:
        """The runs as ``--benchmarks`` says them: ``gsm8k:2,humaneval:0``."""
        return ",".join(f"{b}:{sum(1 for name, seed in self.runs if name == b and seed is not None)}"
                        for b in self.benchmarks())

    def summarize_command(self) -> list[str]:
        return self.python + ["nemo_eval.pipeline.summarize_results", str(self.output_dir),
                              "--benchmarks", self.benchmarks_spec()]

    def generate_command(self, benchmark: str, seed: Optional[int], base_url: str, sandbox: str) -> list[str]:
        command = self.python + ["nemo_eval.inference.generate", f"++benchmark={benchmark}",
                                 f"++output_dir={hydra_value(str(self.output_dir))}",
                                 f"++server.base_url={hydra_value(base_url)}",
                                 f"++code_execution.sandbox_address={hydra_value(sandbox)}"]
        if self.model and self.server_address:
            command.append(f"++server.model={hydra_value(self.model)}")
        if seed is not None:
            command.append(f"++inference.random_seed={seed}")
        return command + self.generation_overrides

    def evaluate_command(self, benchmark: str, seed: Optional[int], sandbox: str) -> list[str]:
        path = self.output_dir / benchmark / output_name(seed)
        return self.python + ["nemo_eval.evaluation.evaluate", f"++prediction_jsonl_files=[{hydra_value(str(path))}]",
                              f"++sandbox_address={hydra_value(sandbox)}"] + self.evaluation_overrides


def run_label(benchmark: str, seed: Optional[int]) -> str:
    """``gsm8k-greedy``, ``gsm8k-rs3``: names a run in logs and messages."""
    return f"{benchmark}-{output_name(seed).removeprefix('output-').removesuffix('.jsonl')}"


class StepRunner:
    """Runs steps as child processes (each its own process group) and remembers the failed ones."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.failures: list[str] = []
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, command: list[str], log_path: Path) -> subprocess.Popen:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=self.env, start_new_session=True)
            except OSError as exc:
                raise UserError(f"cannot run {command[0]}: {exc.strerror}; check the python setting of the cluster "
                                "config") from None
        with self._lock:
            self._running.add(proc)
        return proc

    def run(self, command: list[str], log_path: Path) -> int:
        proc = self.start(command, log_path)
        try:
            return proc.wait()
        finally:
            with self._lock:
                self._running.discard(proc)

    def step(self, name: str, command: list[str], log: Path) -> bool:
        """Run one step to its end; on failure record its exit code, last log line and log file."""
        code = self.run(command, log)
        if code != 0:
            last = log_tail(log, 1).strip()
            with self._lock:
                self.failures.append(f"step '{name}' failed (exit {code}): {last[:300]}; log: {log}")
        return code == 0

    def generate_and_grade(self, job: EvalJob, runs: list[tuple[str, Optional[int]]], base_url: str, sandbox: str,
                           parallel: int) -> None:
        """For every run: generate, then grade; ``parallel`` runs at once. Ctrl-C/SIGTERM end them all."""

        def one_run(run: tuple[str, Optional[int]]) -> None:
            if self._stopping.is_set():
                return
            benchmark, seed = run
            label = run_label(benchmark, seed)
            if self.step(f"generate {label}", job.generate_command(benchmark, seed, base_url, sandbox),
                         job.logs / f"generate-{label}.log") and not self._stopping.is_set():
                if self.step(f"evaluate {label}", job.evaluate_command(benchmark, seed, sandbox),
                             job.logs / f"evaluate-{label}.log"):
                    print(f"nemo-eval: {label} generated and graded", file=sys.stderr, flush=True)

        pool = ThreadPoolExecutor(parallel)
        try:
            list(pool.map(one_run, runs))
        except BaseException:  # Ctrl-C / SIGTERM: end the running steps so their threads return
            self._stopping.set()
            self.stop_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def report(self) -> int:
        """Print the failures; the exit code (1 when any step failed)."""
        for line in self.failures:
            print(f"nemo-eval: {line}", file=sys.stderr)
        return 1 if self.failures else 0

    def stop_all(self, grace: float = 15.0) -> None:
        with self._lock:
            procs = list(self._running)
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()
