"""The Slurm executor: sbatch scripts under ``<output_dir>/slurm/``, one or more eval jobs plus a
dependent summarize job.

Each eval job starts, as ``srun --overlap`` steps on its nodes, the sandbox and (unless an address
is given) the inference server in the background, then the client step (``pipeline.worker``) for
its share of the benchmark x seed runs (``--num-jobs`` splits them round-robin). With a container
image configured for a role, its step gets pyxis's ``--container-image``/``--container-mounts``;
without, it runs as a plain process with the configured ``python``. The summarize job runs
``summarize_results`` after every eval job succeeded (``--dependency=afterok``). ``--wait`` polls
until all are done and exits with their outcome; otherwise job ids and log paths are printed.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Optional

from nemo_eval.children import RUN_ID_ENV, new_run_id
from nemo_eval.errors import UserError
from nemo_eval.inference.server.base import LaunchArgs, get_server_type
from nemo_eval.pipeline.cluster_config import ClusterConfig
from nemo_eval.pipeline.slurm_shell import LocalShell, SshShell
from nemo_eval.pipeline.steps import EvalJob

Shell = LocalShell | SshShell

DONE_OK = {"COMPLETED"}
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}
DONE_BAD = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
POLL_S = 2.0
# below Linux's default ephemeral range (32768-60999): a port drawn there can be taken by any outgoing
# connection on the node between submission and the step's start
STEP_PORTS = range(20000, 32768)


# nemo-eval's own settings: forwarded from the launcher's environment into the jobs (the cluster config's
# env_vars win), since over ssh, or with SBATCH_EXPORT=NONE, the jobs would not see them otherwise
FORWARDED_ENV = ("NEMO_EVAL_DATA_DIR", "NEMO_EVAL_DATA_MIRROR", "NEMO_EVAL_EXTRA_BENCHMARKS", "NEMO_EVAL_EXTRA_PROMPTS",
                 "NEMO_EVAL_PLUGINS")


def forwarded_env(cluster: ClusterConfig) -> dict[str, str]:
    """The launcher's nemo-eval settings the jobs get, unless the cluster config's env_vars set them."""
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k) and k not in cluster.env_vars}


def _directives(cluster: ClusterConfig, name: str, log: Path, nodes: int, gpus: int,
                code_dir: Optional[str] = None, run_id: Optional[str] = None) -> list[str]:
    slurm = cluster.slurm
    lines = ["#!/bin/bash", f"#SBATCH --job-name={slurm.job_name_prefix}-{name}", f"#SBATCH --output={log}",
             f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=1", f"#SBATCH --time={slurm.time}"]
    if slurm.partition:
        lines.append(f"#SBATCH --partition={slurm.partition}")
    if slurm.account:
        lines.append(f"#SBATCH --account={slurm.account}")
    if gpus:
        lines.append(f"#SBATCH --gpus-per-node={gpus}")
    lines += [f"#SBATCH {arg}" for arg in slurm.extra_sbatch_args]
    lines += ["set -uo pipefail", "export PYTHONUNBUFFERED=1"]
    if code_dir:  # nemo-eval's code, copied over ssh
        lines.append(f'export PYTHONPATH={shlex.quote(code_dir)}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    lines += [f"export {key}={shlex.quote(value)}" for key, value in forwarded_env(cluster).items()]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in cluster.env_vars.items()]
    if run_id:  # every step and its descendants carry it: what the watchdogs (and tests) find them by
        lines.append(f"export {RUN_ID_ENV}={shlex.quote(run_id)}")
    return lines


def _srun(cluster: ClusterConfig, image: Optional[str], nodes: int = 1) -> str:
    flags = ["srun", "--overlap", f"--nodes={nodes}", f"--ntasks={nodes}"]
    if image and cluster.container_runtime == "oci":  # Slurm's own OCI support: a bundle, its mounts in config.json
        flags.append(f"--container={shlex.quote(image)}")
    elif image:
        flags.append(f"--container-image={shlex.quote(image)}")
        if cluster.mounts:
            flags.append(f"--container-mounts={shlex.quote(','.join(cluster.mounts))}")
    return " ".join(flags)


def _python(cluster: ClusterConfig, image: Optional[str]) -> str:
    return "python3" if image else shlex.quote(cluster.python)


def eval_script(job: EvalJob, cluster: ClusterConfig, index: int, positions: list[int], job_file: Path,
                code_dir: Optional[str] = None, ports: Optional[tuple[int, int]] = None,
                run_id: Optional[str] = None) -> str:
    """The sbatch script of eval job ``index`` (runs at ``positions`` of the job file).

    Sandbox, server and client run as background steps; the script waits for the first to end. The
    client ending ends the job with its exit code; the sandbox or server ending first (a crash, an
    out-of-memory model load) fails the job at once instead of leaving the client waiting.
    """
    label = f"eval-{index}"
    launch = job.server_address is None
    nodes = job.server_nodes if launch else 1
    gpus = cluster.slurm.gpus_per_node if launch and job.server_gpus else 0
    sandbox_port, server_port = ports or random.SystemRandom().sample(STEP_PORTS, 2)
    logs = job.logs
    log = lambda name: shlex.quote(str(logs / f"{name}-{label}.log"))
    lines = _directives(cluster, label, logs / f"slurm-{label}-%j.out", nodes, gpus, code_dir,
                        f"{run_id}-{label}" if run_id else None)
    image = cluster.container_for("sandbox")
    cleanup = "kill $(jobs -p) 2>/dev/null; wait"
    if cluster.sandbox_mode == "docker" and not image:  # the container `sandbox start` names after its port
        cleanup += f"; docker rm -f nemo-eval-sandbox-{sandbox_port} >/dev/null 2>&1"
    lines += ['HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
              f"trap '{cleanup}' EXIT", "trap 'exit 143' TERM", "STEPS=()"]
    # the sandbox listens on the first node's loopback only: the client step runs there too
    lines.append(f"{_srun(cluster, image)} {_python(cluster, image)} -m nemo_eval sandbox start --mode "
                 f"{cluster.sandbox_mode} --port {sandbox_port} > {log('sandbox')} 2>&1 &")
    lines.append("SANDBOX=$!; STEPS+=($SANDBOX)")
    server = shlex.quote(job.server_address or "")
    if launch:
        server_type = get_server_type(job.server_type)
        image = cluster.container_for("server", server_type.name)
        model = server_type.model_or_default(job.model) or ""
        argv = server_type.command(LaunchArgs(model=model, port=server_port, gpus=job.server_gpus,
                                              nodes=job.server_nodes, extra_args=job.server_args,
                                              python="python3" if image else cluster.python))
        lines.append(f"{_srun(cluster, image, nodes)} {shlex.join(argv)} > {log('server')} 2>&1 &")
        lines.append("STEPS+=($!)")
        server = f"http://$HEAD:{server_port}/v1"
    image = cluster.container_for("nemo_eval")
    lines.append(f"{_srun(cluster, image)} {_python(cluster, image)} -m nemo_eval.pipeline.worker "
                 f"--job {shlex.quote(str(job_file))} --runs {','.join(map(str, positions))} "
                 f"--sandbox http://127.0.0.1:{sandbox_port} --server {server} --label {label}"
                 f" --startup-timeout {job.server_startup_timeout:g}" + (" --launched-server" if launch else "") + " &")
    lines += ["CLIENT=$!",
              'wait -n -p FIRST "${STEPS[@]}" "$CLIENT"; STATUS=$?',
              'if [ "$FIRST" != "$CLIENT" ]; then',
              '  WHICH=server; [ "$FIRST" = "$SANDBOX" ] && WHICH=sandbox',
              f'  echo "nemo-eval: the $WHICH step ended (exit $STATUS) before the client finished; see '
              f'{logs}/$WHICH-{label}.log" >&2',
              "  exit 1",
              "fi",
              'exit "$STATUS"']
    return "\n".join(lines) + "\n"


def summarize_script(job: EvalJob, cluster: ClusterConfig, code_dir: Optional[str] = None) -> str:
    lines = _directives(cluster, "summarize", job.logs / "slurm-summarize-%j.out", 1, 0, code_dir)
    image = cluster.container_for("nemo_eval")
    lines.append(f"{_srun(cluster, image)} {_python(cluster, image)} -m nemo_eval.metrics.summarize_results "
                 f"{shlex.quote(str(job.output_dir))} --benchmarks {job.benchmarks_spec()}")
    return "\n".join(lines) + "\n"


def render_scripts(job: EvalJob, cluster: ClusterConfig, code_dir: Optional[str],
                   run_id: Optional[str] = None) -> list[tuple[Path, str]]:
    """``(path, text)`` of every eval script, then of the summarize script."""
    folder = job.output_dir / "slurm"
    count = min(job.num_jobs, len(job.runs))
    scripts = [(folder / f"eval-{index}.sbatch",
                eval_script(job, cluster, index, list(range(index, len(job.runs), count)), folder / "job.json",
                            code_dir, run_id=run_id)) for index in range(count)]
    return scripts + [(folder / "summarize.sbatch", summarize_script(job, cluster, code_dir))]


def write_scripts(job: EvalJob, cluster: ClusterConfig, shell: Shell, run_id: str) -> tuple[list[Path], Path]:
    """Write job.json and every sbatch script; returns (eval scripts, summarize script)."""
    shell.write(job.logs / ".keep", "")
    shell.write(job.output_dir / "slurm" / "job.json", job.to_json())
    rendered = render_scripts(job, cluster, shell.code_dir, run_id)
    for path, text in rendered:
        shell.write(path, text)
    paths = [path for path, _ in rendered]
    return paths[:-1], paths[-1]


def _previous_ids(shell: Shell, record: Path) -> list[str]:
    try:
        data = json.loads(shell.read(record) or "{}")
        return [str(j) for j in data.get("eval", [])] + ([str(data["summarize"])] if data.get("summarize") else [])
    except (ValueError, AttributeError):
        return []


def _sbatch(shell: Shell, script: Path, dependency: Optional[str] = None) -> str:
    command = ["sbatch", "--parsable"] + ([f"--dependency={dependency}", "--kill-on-invalid-dep=yes"] if dependency else [])
    result = shell.run(command + [str(script)])
    if result.returncode != 0:
        raise UserError(f"sbatch refused {script}: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    return result.stdout.strip().split(";")[0]


def job_state(shell: Shell, job_id: str) -> str:
    """Slurm's state of a job (``scontrol``, else ``sacct``), or ``UNKNOWN``."""
    result = shell.run(["scontrol", "show", "job", "-o", job_id])
    for token in result.stdout.split():
        if token.startswith("JobState="):
            return token.split("=", 1)[1]
    result = shell.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"])
    states = result.stdout.split()
    return states[0].split()[0] if result.returncode == 0 and states else "UNKNOWN"


def wait_for(shell: Shell, eval_ids: list[str], summary_id: str, job: EvalJob) -> int:
    """Poll until every job ended; exit code 0 only when all completed."""
    pending = {job_id: f"eval-{n}" for n, job_id in enumerate(eval_ids)} | {summary_id: "summarize"}
    states: dict[str, str] = {}
    try:
        while len(states) < len(pending):
            for job_id, name in pending.items():
                if job_id in states:
                    continue
                state = job_state(shell, job_id)
                if state in DONE_OK | DONE_BAD:
                    states[job_id] = state
                    if state in DONE_BAD and name != "summarize" and summary_id not in states:
                        shell.run(["scancel", summary_id])
                        states[summary_id] = "CANCELLED (an eval job failed)"
            if len(states) < len(pending):
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        shell.run(["scancel", *[j for j in pending if j not in states]])
        print(f"nemo-eval eval: cancelled the Slurm jobs {', '.join(pending)}", file=sys.stderr)
        raise
    failed = [(job_id, pending[job_id], state) for job_id, state in states.items() if state not in DONE_OK]
    for job_id, name, state in failed:
        print(f"nemo-eval eval: Slurm job {job_id} ({name}) ended {state}; log: {job.logs / f'slurm-{name}-{job_id}.out'}",
              file=sys.stderr)
    if not failed:
        print(shell.read(job.logs / f"slurm-summarize-{summary_id}.out").rstrip())
    return 1 if failed else 0


def run_slurm(job: EvalJob, cluster: ClusterConfig, dry_run: bool, wait: bool) -> int:
    shell: Shell = SshShell(cluster.ssh_tunnel) if cluster.ssh_tunnel else LocalShell()
    if dry_run:
        for path, text in render_scripts(job, cluster, shell.code_dir):
            print(f"# {path}\n{text}")
        print("# dry run: nothing written, nothing submitted")
        return 0
    if cluster.ssh_tunnel:
        check_remote_mirror(shell, cluster)
    run_id = new_run_id()
    lock = None
    if isinstance(shell, LocalShell):  # the output dir is on this machine's file system: one owner at a time
        from nemo_eval.pipeline.ownership import OutputDirLock

        lock = OutputDirLock(job.output_dir, run_id, "nemo-eval eval (Slurm submission)",
                             slurm_active=lambda ids: [j for j in ids if job_state(shell, j) in ACTIVE]).acquire()
    submitted: Optional[tuple[list[str], str]] = None
    try:
        submitted = _submit(job, cluster, shell, run_id)
    finally:
        if lock is not None:  # the submitted jobs own the dir now (or nobody, when nothing was submitted)
            if submitted is not None:
                lock.record(slurm_jobs=[*submitted[0], submitted[1]])
            lock.release(keep_slurm_jobs=submitted is not None)
    eval_ids, summary_id = submitted
    print(f"nemo-eval eval: submitted eval jobs {', '.join(eval_ids)} and summarize job {summary_id}; logs under "
          f"{job.logs} (slurm-*.out and one file per step)", file=sys.stderr)
    return wait_for(shell, eval_ids, summary_id, job) if wait else 0


def check_remote_mirror(shell: SshShell, cluster: ClusterConfig) -> None:
    """A forwarded mirror path must exist on the cluster: one line before submitting, not a failed job."""
    mirror = forwarded_env(cluster).get("NEMO_EVAL_DATA_MIRROR")
    if mirror and not mirror.startswith(("http://", "https://")):
        if shell.run(["test", "-d", mirror]).returncode != 0:
            raise UserError(f"NEMO_EVAL_DATA_MIRROR={mirror} is forwarded to the Slurm jobs but is not a directory on "
                            f"{shell.tunnel.destination()}; set env_vars: {{NEMO_EVAL_DATA_MIRROR: <path there>}} in the "
                            "cluster config (or unset it here)")


def _submit(job: EvalJob, cluster: ClusterConfig, shell: Shell, run_id: str) -> tuple[list[str], str]:
    record = job.output_dir / "slurm" / "submitted.json"
    active = [j for j in _previous_ids(shell, record) if job_state(shell, j) in ACTIVE]
    if active:
        raise UserError(f"Slurm jobs {', '.join(active)} of an earlier submission to {job.output_dir} are still "
                        f"pending or running; wait for them (or scancel {' '.join(active)}) before submitting again")
    shell.upload_code()
    scripts, summary = write_scripts(job, cluster, shell, run_id)
    submitted: list[str] = []
    try:
        for path in scripts:
            submitted.append(_sbatch(shell, path))
        summary_id = _sbatch(shell, summary, dependency="afterok:" + ":".join(submitted))
    except BaseException:  # a refused script, Ctrl-C: leave nothing half-submitted behind
        if submitted:
            shell.run(["scancel", *submitted])
            print(f"nemo-eval eval: cancelled the jobs already submitted ({', '.join(submitted)})", file=sys.stderr)
        raise
    shell.write(record, json.dumps({"eval": submitted, "summarize": summary_id}) + "\n")
    return submitted, summary_id
