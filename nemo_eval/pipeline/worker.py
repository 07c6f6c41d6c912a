"""``python -m nemo_eval.pipeline.worker``: the client step of a Slurm job.

Runs on the job's first node next to the sandbox and server steps the sbatch script started:
waits until both answer, prepares the data of its runs, then generates (child steps) and grades
(here) each run (``--runs`` picks them from the job file by position). A launched server is healthy
when its server type's ``health_path`` (the server registry) answers. Exits non-zero when any step
failed. Its children die with it (parent-death signal, and a watchdog ending everything carrying the
job's ``NEMO_EVAL_RUN_ID``), so ``scancel`` leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.children import RunWatchdog, nested_run_id, run_environment
from nemo_eval.errors import UserError, run_main
from nemo_eval.inference.server import get_server_type
from nemo_eval.processes import poll_until_healthy
from nemo_eval.pipeline.run_state import grader, prepare_here
from nemo_eval.pipeline.steps import EvalJob, StepRunner

PROG = "nemo-eval worker"


def wait_healthy(name: str, url: str, seconds: float, log_hint: str) -> None:
    if poll_until_healthy(url, seconds, interval=1.0) is not None:
        raise UserError(f"the {name} at {url} did not answer within {seconds:.0f} s; see {log_hint}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", type=Path, required=True, help="the job file the launcher wrote (slurm/job.json)")
    parser.add_argument("--runs", required=True, help="comma-separated positions of the runs to do")
    parser.add_argument("--sandbox", required=True, help="sandbox address")
    parser.add_argument("--server", required=True, help="OpenAI-compatible base URL (.../v1)")
    parser.add_argument("--label", default="worker", help="names this worker's logs")
    parser.add_argument("--startup-timeout", type=float, default=1800.0, help="seconds to wait for sandbox and server")
    parser.add_argument("--launched-server", action="store_true",
                        help="the job started the server: wait until it answers (an existing one is used as is)")
    args = parser.parse_args(argv)
    job = EvalJob.from_json(args.job.read_text(encoding="utf-8"))
    job.python = [sys.executable, "-m"]  # steps run with the worker's own interpreter (also inside a container)
    runs = [job.runs[int(i)] for i in args.runs.split(",") if i.strip()]
    os.environ.update(job.env_vars)  # the steps run here (prepare, grading) see what the child steps see; plugins too
    wait_healthy("sandbox", args.sandbox + "/health", args.startup_timeout, f"{job.logs}/sandbox-{args.label}.log")
    if args.launched_server:
        root = args.server.rstrip("/").removesuffix("/v1")
        health = root + get_server_type(job.server_type).health_path
        wait_healthy("server", health, args.startup_timeout, f"{job.logs}/server-{args.label}.log")
    run_id = nested_run_id("worker")  # the job's id is also the sandbox step's: the worker ends only its own
    watchdog = RunWatchdog(run_id)
    runner = StepRunner(run_environment(dict(os.environ), run_id), watchdog)
    benchmarks = list(dict.fromkeys(name for name, _ in runs))
    try:
        if runner.in_process("prepare-data", lambda: prepare_here(benchmarks), job.logs / f"prepare-data-{args.label}.log"):
            runner.generate_and_grade(job, runs, lambda: args.server, lambda: args.sandbox, 1, grader(job))
        if runner.service_error is not None:
            raise runner.service_error
        return runner.report()
    finally:
        runner.stop_all()
        watchdog.close()


if __name__ == "__main__":
    sys.exit(run_main(PROG, main))
