"""The local executor: every step a child process on this machine, each with a log file.

Order: prepare data; start the sandbox and (unless an address is given) the inference server and
wait until both are healthy; for every benchmark and seed generate, then grade (``--num_jobs`` of
those at once); summarize. The sandbox, the server and any running step are torn down on success,
failure, Ctrl-C and SIGTERM. A failed step is reported with its exit code and log file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from nemo_eval.errors import UserError
from nemo_eval.inference.config import output_name
from nemo_eval.inference.server.base import LaunchArgs, get_server_type
from nemo_eval.inference.server.launcher import LaunchedServer, free_port, log_tail
from nemo_eval.pipeline.cluster_config import ClusterConfig

PYTHON = [sys.executable, "-m"]
SANDBOX_STARTUP_S = 300.0


@dataclass
class EvalJob:
    """Everything the launcher decided, before running anything."""

    output_dir: Path
    runs: list[tuple[str, Optional[int]]]
    cluster: ClusterConfig
    model: Optional[str] = None
    server_type: str = "openai"
    server_address: Optional[str] = None
    server_gpus: int = 0
    server_nodes: int = 1
    num_jobs: int = 1
    generation_overrides: list[str] = field(default_factory=list)
    evaluation_overrides: list[str] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.output_dir / "logs"

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.runs))

    def generate_command(self, benchmark: str, seed: Optional[int], base_url: str, sandbox: str) -> list[str]:
        command = PYTHON + ["nemo_eval.inference.generate", f"++benchmark={benchmark}", f"++output_dir={self.output_dir}",
                            f"++server.base_url={base_url}", f"++code_execution.sandbox_address={sandbox}"]
        if self.model and self.server_address:
            command.append(f"++server.model={self.model}")
        if seed is not None:
            command.append(f"++inference.random_seed={seed}")
        return command + self.generation_overrides

    def evaluate_command(self, benchmark: str, seed: Optional[int], sandbox: str) -> list[str]:
        path = self.output_dir / benchmark / output_name(seed)
        return PYTHON + ["nemo_eval.evaluation.evaluate", f"++prediction_jsonl_files=[{path}]",
                         f"++sandbox_address={sandbox}"] + self.evaluation_overrides


class Children:
    """Running child processes (each its own process group), so that teardown can end them all."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def start(self, command: list[str], log_path: Path) -> subprocess.Popen:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, start_new_session=True)
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

    def stop_all(self, grace: float = 15.0) -> None:
        with self._lock:
            procs = list(self._running)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def started_sandbox(job: EvalJob, children: Children) -> Iterator[str]:
    port = free_port()
    log = job.logs / "sandbox.log"
    proc = children.start(PYTHON + ["nemo_eval", "sandbox", "start", "--mode", job.cluster.sandbox_mode,
                                    "--port", str(port)], log)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SANDBOX_STARTUP_S
        while not _healthy(address + "/health"):
            if proc.poll() is not None:
                raise UserError(f"step 'sandbox' failed (exit {proc.returncode}): {log_tail(log, 1)}; log: {log}")
            if time.monotonic() > deadline:
                raise UserError(f"step 'sandbox' did not get healthy in {SANDBOX_STARTUP_S:.0f} s; log: {log}")
            time.sleep(0.3)
        print(f"nemo-eval eval: sandbox ({job.cluster.sandbox_mode} mode) at {address}; log {log}", file=sys.stderr)
        yield address
    finally:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


@contextmanager
def server_url(job: EvalJob) -> Iterator[str]:
    if job.server_address:
        address = job.server_address.rstrip("/")
        yield address if address.endswith("/v1") else address + "/v1"
        return
    server_type = get_server_type(job.server_type)
    model = job.model or (server_type.default_model() if server_type.default_model else None)
    if not model:
        raise UserError(f"server type {job.server_type} needs --model (a model path or name)")
    args = LaunchArgs(model=model, port=free_port(), gpus=job.server_gpus, nodes=job.server_nodes,
                      python=sys.executable)
    with LaunchedServer(server_type, args, job.logs / "server.log") as server:
        print(f"nemo-eval eval: {server_type.name} server at {server.base_url}; log {job.logs / 'server.log'}",
              file=sys.stderr)
        yield server.base_url


def run_local(job: EvalJob) -> int:
    """Run the whole job here; returns the exit code (0 only when every step succeeded)."""
    env = {**os.environ, **job.cluster.env_vars}
    children = Children(env)
    job.logs.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    def step(name: str, command: list[str], log: Path) -> bool:
        code = children.run(command, log)
        if code != 0:
            last = log_tail(log, 1).strip()
            failures.append(f"step '{name}' failed (exit {code}): {last[:300]}; log: {log}")
        return code == 0

    try:
        if not step("prepare-data", PYTHON + ["nemo_eval.datasets.prepare", *job.benchmarks()],
                    job.logs / "prepare-data.log"):
            return _report(failures)
        with ExitStack() as stack:
            sandbox = stack.enter_context(started_sandbox(job, children))
            base_url = stack.enter_context(server_url(job))

            stopping = threading.Event()

            def one_run(run: tuple[str, Optional[int]]) -> None:
                if stopping.is_set():
                    return
                benchmark, seed = run
                label = f"{benchmark}-{output_name(seed).removeprefix('output-').removesuffix('.jsonl')}"
                if step(f"generate {label}", job.generate_command(benchmark, seed, base_url, sandbox),
                        job.logs / f"generate-{label}.log"):
                    step(f"evaluate {label}", job.evaluate_command(benchmark, seed, sandbox),
                         job.logs / f"evaluate-{label}.log")
                    print(f"nemo-eval eval: {label} done", file=sys.stderr)

            pool = ThreadPoolExecutor(job.num_jobs)
            try:
                list(pool.map(one_run, job.runs))
            except BaseException:  # Ctrl-C / SIGTERM: end the running steps so their threads return
                stopping.set()
                children.stop_all()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        if failures:
            return _report(failures)
        summary = job.logs / "summarize-results.log"
        if step("summarize-results", PYTHON + ["nemo_eval.pipeline.summarize_results", str(job.output_dir)], summary):
            text = summary.read_text(encoding="utf-8", errors="replace")
            print("\n".join(line for line in text.splitlines() if not line.startswith("$ ")))
        return _report(failures)
    finally:
        children.stop_all()


def _report(failures: list[str]) -> int:
    for line in failures:
        print(f"nemo-eval eval: {line}", file=sys.stderr)
    return 1 if failures else 0
