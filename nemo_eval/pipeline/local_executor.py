"""The local executor: the whole job on this machine, owned by one launcher, leaving nothing behind.

Order: take the output dir (:mod:`ownership`; a second launcher refuses), start the run's watchdog,
start the sandbox at once when some run still needs grading, prepare data (here), find the runs with
something left to generate and launch the server only if there are any (a process, or a container
when the cluster config names an image), then for every benchmark and seed generate (a child step)
and grade (here), ``--num-jobs`` runs at once, generation starting as soon as the server answers and
grading as soon as the sandbox does; summarize (here). The sandbox and the server are stopped without
waiting: the watchdog finishes that after the launcher exits, and ends everything the run started if
the launcher dies (``kill -9`` included). A failed step is reported with how it ended and its log.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from nemo_eval.children import RunWatchdog, new_run_id, run_environment
from nemo_eval.errors import UserError
from nemo_eval.pipeline.cluster_config import ClusterConfig
from nemo_eval.pipeline.ownership import OutputDirLock
from nemo_eval.pipeline.run_state import (cost_estimate, fully_graded, generation_pending, grader, prepare_here,
                                          summarize_here)
from nemo_eval.pipeline.services import Service, existing_server, start_sandbox, start_server
from nemo_eval.pipeline.steps import EvalJob, StepRunner
from nemo_eval.run_layout import output_path, run_label


def slurm_jobs_active(job_ids: list[str]) -> Optional[list[str]]:
    """Which of ``job_ids`` Slurm still runs or holds; None when Slurm cannot be asked here."""
    from nemo_eval.pipeline.slurm_executor import ACTIVE, job_state
    from nemo_eval.pipeline.slurm_shell import LocalShell

    try:
        return [j for j in job_ids if job_state(LocalShell(), j) in ACTIVE]
    except UserError:
        return None


def run_local(job: EvalJob, cluster: ClusterConfig) -> int:
    """Run the whole job here; returns the exit code (0 only when every step succeeded)."""
    run_id = new_run_id()
    lock = OutputDirLock(job.output_dir, run_id, slurm_active=slurm_jobs_active).acquire()
    # the job's env_vars (data dir, mirror, ...) apply to the steps run here as to the child steps
    os.environ.update(job.env_vars)
    watchdog = RunWatchdog(run_id)
    runner = StepRunner(run_environment(dict(os.environ), run_id), watchdog)
    services: list[Service] = []
    try:
        return _run(job, cluster, runner, watchdog, lock, services)
    finally:
        for service in services:
            service.stop()               # SIGTERM, no waiting: the watchdog waits and SIGKILLs
        runner.stop_all()                # steps still running (Ctrl-C, a failure): gone before the lock is
        watchdog.close()
        lock.release()


def _run(job: EvalJob, cluster: ClusterConfig, runner: StepRunner, watchdog: RunWatchdog, lock: OutputDirLock,
         services: list[Service]) -> int:
    job.logs.mkdir(parents=True, exist_ok=True)
    sandbox: Optional[Service] = None
    if not all(fully_graded(output_path(job.output_dir, b, s), job.evaluation_overrides) for b, s in job.runs):
        sandbox = start_sandbox(job, runner, cluster, lock.add_container)
        services.append(sandbox)
    if not runner.in_process("prepare-data", lambda: prepare_here(job.benchmarks()), job.logs / "prepare-data.log"):
        return runner.report()
    pending = {(b, s) for b, s in job.runs if generation_pending(job, b, s)}
    done = [run_label(b, s) for b, s in job.runs if (b, s) not in pending]
    if done:
        print(f"nemo-eval eval: nothing left to generate for {', '.join(done)}", file=sys.stderr, flush=True)
    estimate = cost_estimate(job, [run for run in job.runs if run in pending]) if pending else None
    if estimate:
        print(f"nemo-eval eval: {estimate}", file=sys.stderr, flush=True)
    grade = grader(job)
    server = existing_server(job.server_address) if job.server_address else None
    if pending and server is None:
        server = start_server(job, runner, cluster, watchdog, lock.add_container)
        services.append(server)
    if pending and sandbox is None:
        sandbox = start_sandbox(job, runner, cluster, lock.add_container)
        services.append(sandbox)

    def no_service() -> str:
        raise AssertionError("a run asked for a service nothing needed")

    runner.generate_and_grade(job, job.runs, server.address if server else no_service,
                              sandbox.address if sandbox else no_service, job.num_jobs, grade,
                              needs_generation=lambda b, s: (b, s) in pending)
    if runner.service_error is not None:
        raise runner.service_error  # one line, exit 2: the sandbox or server could not start
    if runner.failures:
        return runner.report()
    summary = job.logs / "summarize-results.log"
    summary.unlink(missing_ok=True)  # this run's summary only
    tables: list[str] = []
    if runner.in_process("summarize-results", lambda: tables.append(summarize_here(job)) or tables[0], summary):
        print(tables[0])
    return runner.report()
