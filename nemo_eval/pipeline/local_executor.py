"""The local executor: every step a child process on this machine, each with a log file; a
launched server runs in a Docker container when the cluster config names an image for it, the
sandbox in docker mode when it names one for the sandbox.

Order: prepare data; start the sandbox and (unless an address is given) the inference server and
wait until both are healthy; for every benchmark and seed generate, then grade (``--num_jobs`` of
those at once); summarize. The sandbox, the server and any running step are torn down on success,
failure, Ctrl-C and SIGTERM. A failed step is reported with its exit code and log file.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack, contextmanager
from typing import Iterator

from nemo_eval.errors import UserError
from nemo_eval.inference.server.base import LaunchArgs, get_server_type
from nemo_eval.inference.server.launcher import (LaunchedServer, free_port, log_tail, poll_until_healthy,
                                                  terminate_group)
from nemo_eval.pipeline.cluster_config import ClusterConfig
from nemo_eval.pipeline.container_server import ContainerServer
from nemo_eval.pipeline.steps import EvalJob, StepRunner

SANDBOX_STARTUP_S = 300.0


@contextmanager
def started_sandbox(job: EvalJob, children: StepRunner, cluster: ClusterConfig) -> Iterator[str]:
    port = free_port()
    log = job.logs / "sandbox.log"
    image = cluster.container_for("sandbox")
    mode = "docker" if image else cluster.sandbox_mode
    proc = children.start(job.python + ["nemo_eval", "sandbox", "start", "--mode", mode, "--port", str(port)]
                          + (["--image", image] if image else []), log)
    address = f"http://127.0.0.1:{port}"
    try:
        outcome = poll_until_healthy(address + "/health", SANDBOX_STARTUP_S, proc.poll, interval=0.3)
        if outcome == "exited":
            raise UserError(f"step 'sandbox' failed (exit {proc.returncode}): {log_tail(log, 1)}; log: {log}")
        if outcome == "timeout":
            raise UserError(f"step 'sandbox' did not get healthy in {SANDBOX_STARTUP_S:.0f} s; log: {log}")
        print(f"nemo-eval eval: sandbox ({mode} mode) at {address}; log {log}", file=sys.stderr)
        yield address
    finally:
        terminate_group(proc, 30)


@contextmanager
def server_url(job: EvalJob, cluster: ClusterConfig) -> Iterator[str]:
    if job.server_address:
        yield job.server_address
        return
    server_type = get_server_type(job.server_type)
    model = server_type.model_or_default(job.model)
    if not model:
        raise UserError(f"server type {job.server_type} needs --model (a model path or name)")
    image = cluster.container_for("server", server_type.name)
    args = LaunchArgs(model=model, port=free_port(), gpus=job.server_gpus, nodes=job.server_nodes,
                      extra_args=job.server_args, python="python3" if image else sys.executable)
    log = job.logs / "server.log"
    launched = (ContainerServer(server_type, args, image, log, cluster.mounts, job.env_vars, job.server_startup_timeout)
                if image else LaunchedServer(server_type, args, log, startup_timeout=job.server_startup_timeout,
                                             env={**os.environ, **job.env_vars}))
    with launched as server:
        print(f"nemo-eval eval: {server_type.name} server at {server.base_url}; log {job.logs / 'server.log'}",
              file=sys.stderr)
        yield server.base_url


def run_local(job: EvalJob, cluster: ClusterConfig) -> int:
    """Run the whole job here; returns the exit code (0 only when every step succeeded)."""
    runner = StepRunner({**os.environ, **job.env_vars})
    job.logs.mkdir(parents=True, exist_ok=True)
    try:
        if not runner.step("prepare-data", job.python + ["nemo_eval.datasets.prepare", *job.benchmarks()],
                           job.logs / "prepare-data.log"):
            return runner.report()
        with ExitStack() as stack:
            sandbox = stack.enter_context(started_sandbox(job, runner, cluster))
            base_url = stack.enter_context(server_url(job, cluster))
            runner.generate_and_grade(job, job.runs, base_url, sandbox, job.num_jobs)
        if runner.failures:
            return runner.report()
        summary = job.logs / "summarize-results.log"
        summary.unlink(missing_ok=True)  # this run's summary only
        if runner.step("summarize-results", job.summarize_command(), summary):
            text = summary.read_text(encoding="utf-8", errors="replace")
            print("\n".join(line for line in text.splitlines() if not line.startswith("$ ")))
        return runner.report()
    finally:
        runner.stop_all()
