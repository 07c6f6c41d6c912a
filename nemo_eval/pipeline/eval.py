"""``nemo-eval eval`` (also ``python -m nemo_eval.pipeline.eval``): the whole evaluation in one command.

    nemo-eval eval --cluster local --server-type openai --server-address http://127.0.0.1:8000/v1 \\
        --model NAME --benchmarks gsm8k:0,math-500:4 --output-dir results ++max_samples=10

Prepares data, starts the sandbox and the server (unless ``--server-address``), generates every
benchmark and seed, grades in the sandbox, prints the summary and writes
``<output_dir>/metrics.json``. Every ``++key=value`` goes to the step(s) whose settings have that
key (generation, evaluation). Everything is checked before anything starts. Re-running the same
command resumes: finished files are neither generated nor graded again. Several models
(``--model A,B,C``, ``--model @file``) or a directory of checkpoints (``--watch DIR``) make a sweep
(:mod:`nemo_eval.pipeline.sweep`): one output dir per checkpoint, then a summary with trends.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.datasets.spec import BENCHMARKS
from nemo_eval.errors import UserError, run_main
from nemo_eval.evaluation.evaluate import check_settings as check_evaluate_settings
from nemo_eval.evaluation.evaluate import evaluate_config_class, parse_settings
from nemo_eval.inference.config import GenerateConfig, check_settings
from nemo_eval.inference.server import get_server_type, launchable_server_types, server_types_help
from nemo_eval.metrics.families import METRICS
from nemo_eval.overrides import _is_mapping_field, flat_fields, parse_overrides
from nemo_eval.pipeline.cluster_config import ClusterConfig, check_ssh, load_cluster_config
from nemo_eval.pipeline.local_executor import run_local
from nemo_eval.pipeline.slurm_executor import run_slurm
from nemo_eval.pipeline.steps import EvalJob
from nemo_eval.pipeline.sweep import parse_models, run_models, watch
from nemo_eval.run_layout import METRICS_NAME, parse_benchmark_runs

PROG = "nemo-eval eval"
# settings the launcher sets itself, with the flag to use instead
LAUNCHER_KEYS = {"server.port": "the launcher's choice of a free port", "server.server_gpus": "--server-gpus",
                 "server.server_nodes": "--server-nodes", "benchmark": "--benchmarks", "output_dir": "--output-dir", "output_file": "--output-dir",
                 "input_file": "--benchmarks", "inference.random_seed": "--benchmarks NAME:SEEDS",
                 "server.base_url": "--server-address", "server.server_type": "--server-type", "server.model": "--model",
                 "prediction_jsonl_files": "--output-dir", "sandbox_address": "the launcher's sandbox",
                 "code_execution.sandbox_address": "the launcher's sandbox", "dry_run": "--dry-run"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run benchmarks end to end: prepare data, start the code sandbox and the inference server (or "
                    "use --server-address), generate every benchmark and seed, grade in the sandbox, print the "
                    "summary and write <output_dir>/metrics.json. ++key=value settings go to the generation and "
                    "evaluation steps (see nemo-eval generate --help, nemo-eval evaluate --help).",
        epilog="example:\n  nemo-eval eval --server-type openai --server-address http://127.0.0.1:8000/v1 --model NAME "
               "\\\n      --benchmarks gsm8k:0,math-500:4 --output-dir results ++max_samples=10")
    parser.add_argument("--cluster", default=None, help="cluster config: a name in cluster_configs/ or a YAML path "
                                                        "(default: $NEMO_EVAL_CONFIG, else local)")
    parser.add_argument("--benchmarks", required=True, help="NAME:SEEDS list: gsm8k:0 = greedy only, math-500:4 = "
                                                            "greedy + 4 sampled runs (seeds 0-3)")
    parser.add_argument("--output-dir", required=True, type=Path, help="where outputs, logs and metrics.json go")
    parser.add_argument("--model", default=None, help="model path (launched servers) or name (existing endpoints); "
                                                      "A,B,C or @FILE (one per line) evaluates each into "
                                                      "<output-dir>/<name>/ (a checkpoint sweep)")
    parser.add_argument("--server-type", default="openai", help=server_types_help())
    parser.add_argument("--server-address", default=None, help="base URL of a running OpenAI-compatible server")
    parser.add_argument("--server-gpus", type=int, default=0, help="GPUs for a launched server")
    parser.add_argument("--server-nodes", type=int, default=1, help="nodes for a launched server")
    parser.add_argument("--server-args", default="", help="extra command-line arguments for a launched server "
                                                           "(e.g. \"--max-model-len 8192\")")
    parser.add_argument("--num-jobs", type=int, default=1, help="benchmark x seed runs at once")
    parser.add_argument("--dry-run", action="store_true", help="print the steps (Slurm: the sbatch scripts) and run nothing")
    parser.add_argument("--wait", action="store_true", help="Slurm: wait for the jobs and exit with their outcome")
    parser.add_argument("--watch", type=Path, default=None, metavar="DIR",
                        help="evaluate every checkpoint subdir of DIR as it appears, until stopped (Ctrl-C); "
                             "what was evaluated is recorded in <output-dir>/sweep.json and never evaluated again")
    parser.add_argument("--watch-interval", type=float, default=60.0, metavar="SECONDS",
                        help="--watch: seconds between looks at DIR; a checkpoint is taken once unchanged that long")
    return parser


def route_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """Split ``++key=value`` settings into (generation, evaluation) by which config has the key."""
    targets = []
    for config in (GenerateConfig, evaluate_config_class()):
        leaves = flat_fields(config)
        targets.append(({name for name, _, _ in leaves}, [name + "." for name, f, owner in leaves if _is_mapping_field(f, owner)]))
    generation, evaluation = [], []
    for raw in overrides:
        if not raw.startswith("+") and "=" not in raw:
            raise UserError(f"unknown argument {raw!r}; settings are given as ++key=value (see --help)")
        key = raw.lstrip("+~").split("=", 1)[0].strip()
        if key in LAUNCHER_KEYS:
            raise UserError(f"++{key} is set by the launcher; use {LAUNCHER_KEYS[key]} instead")
        hits = [key in names or any(key.startswith(p) for p in prefixes) for names, prefixes in targets]
        if not any(hits):
            raise UserError(f"unknown setting {key!r} in {raw!r}: neither generation nor evaluation has it "
                            "(see nemo-eval generate --help and nemo-eval evaluate --help)")
        if hits[0]:
            generation.append(raw)
        if hits[1]:
            evaluation.append(raw)
    return generation, evaluation


def plan_job(args: argparse.Namespace, overrides: list[str], cluster: ClusterConfig) -> EvalJob:
    """Validate everything and decide the job; raises UserError before anything is launched."""
    runs = parse_benchmark_runs(args.benchmarks)
    names = [name for name, seed in runs if seed is None]
    if len(names) != len(set(names)):
        raise UserError(f"--benchmarks names a benchmark twice ({args.benchmarks}); give each once with its seed count")
    for name in names:  # every name, and the metrics family each is summarised with, known before launching
        METRICS.get(BENCHMARKS.get(name).defaults.metrics_type)
    generation, evaluation = route_overrides(overrides)
    generate_settings = parse_overrides(GenerateConfig, generation)  # values checked now, not after launching
    check_settings(generate_settings)
    check_evaluate_settings(parse_settings(evaluation))
    if generate_settings.server.server_args and args.server_args:
        raise UserError("give launched-server arguments once: --server-args or ++server.server_args")
    address = _normalized_address(args.server_address)
    server_type = get_server_type(args.server_type)
    if address is None and not server_type.launchable:
        raise UserError(f"--server-type {server_type.name} uses an existing endpoint: give --server-address "
                        f"(or pick a server type to launch: {', '.join(launchable_server_types())})")
    if args.server_address is None and server_type.needs_gpu and args.server_gpus < 1:
        cpu = [name for name in launchable_server_types() if not get_server_type(name).needs_gpu]
        raise UserError(f"--server-type {server_type.name} needs GPUs: set --server-gpus (server types without GPUs: "
                        f"{', '.join(cpu)})")
    if (args.server_address is None and cluster.executor == "slurm" and args.server_gpus
            and cluster.slurm.gpus_per_node < 1):
        raise UserError(f"--server-type {server_type.name} needs GPUs but {cluster.name} has slurm.gpus_per_node: 0; "
                        "set it to the GPUs of a node")
    if args.num_jobs < 1 or args.server_gpus < 0 or args.server_nodes < 1:
        raise UserError("--num-jobs and --server-nodes must be >= 1, --server-gpus >= 0")
    if cluster.ssh_tunnel and not args.output_dir.is_absolute():
        raise UserError("with ssh_tunnel, --output-dir is a path on the cluster and must be absolute")
    output_dir = args.output_dir if cluster.ssh_tunnel else args.output_dir.expanduser().resolve()
    if not cluster.ssh_tunnel:
        check_output_dir(output_dir)
    if cluster.executor == "slurm" and not re.fullmatch(r"[A-Za-z0-9_./+@~-]+", str(output_dir)):
        raise UserError(f"--output-dir {output_dir} has characters sbatch scripts cannot carry safely (spaces, "
                        "quotes, $, %, ...); use letters, digits and . _ - + @ ~ /")
    python = [cluster.python, "-m"]
    if cluster.executor == "local":
        python = [sys.executable, "-m"]
    elif cluster.container_for("nemo_eval"):
        python = ["python3", "-m"]
    return EvalJob(output_dir=output_dir, runs=runs, env_vars=cluster.env_vars, model=args.model,
                   server_type=server_type.name, server_address=address, server_gpus=args.server_gpus,
                   server_nodes=args.server_nodes, num_jobs=args.num_jobs, generation_overrides=generation,
                   evaluation_overrides=evaluation, python=python,
                   server_args=args.server_args or generate_settings.server.server_args,
                   server_startup_timeout=generate_settings.server.startup_timeout,
                   code_execution=generate_settings.code_execution.enabled)


def check_output_dir(path: Path) -> None:
    """A one-line error when ``path`` cannot be an output dir (a file is in the way); creates nothing."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise UserError(f"--output-dir {path} {where}, not a directory; give a directory path")


def _normalized_address(address: Optional[str]) -> Optional[str]:
    """``http://host:port`` or ``.../v1`` -> ``.../v1``; a one-line error for anything else."""
    if address is None:
        return None
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", address):
        raise UserError(f"--server-address {address!r} must look like http://HOST:PORT or http://HOST:PORT/v1")
    address = address.rstrip("/")
    return address if address.endswith("/v1") else address + "/v1"


def check_server_reachable(address: str, timeout: float = 10.0) -> None:
    """A one-line error, before anything starts, when nothing answers at ``--server-address``."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(address + "/models", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answers (401 without a key, 404 on servers without /models, ...): generation says the rest
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach the server at {address} ({reason}); start it, or fix --server-address") from None


def check_slurm_sandbox(cluster: ClusterConfig) -> None:
    """bwrap mode needs root in the job; jobs run as the submitting user: say so before submitting."""
    if cluster.sandbox_mode != "bwrap" or cluster.container_for("sandbox"):
        return
    if cluster.ssh_tunnel:
        from nemo_eval.pipeline.slurm_shell import SshShell

        result = SshShell(cluster.ssh_tunnel).run(["id", "-u"])
        uid = int(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip().isdigit() else 0
    else:
        import os

        uid = os.geteuid()
    if uid != 0:
        raise UserError(f"the Slurm jobs would run the sandbox in bwrap mode, which needs root, but they run as you "
                        f"(uid {uid}); in {cluster.name} set sandbox_mode: docker, or containers: {{sandbox: IMAGE}} "
                        "(an image built from sandbox/Dockerfile)")


def describe(job: EvalJob) -> str:
    sandbox, server = "<sandbox address>", job.server_address or f"<{job.server_type} server address>"
    lines = [f"# outputs and logs under {job.output_dir}",
             f"prepare-data {' '.join(job.benchmarks())}",
             "sandbox start"]
    if not job.server_address:
        lines.append(f"launch {job.server_type} server (model {job.model or 'default'}, {job.server_gpus} GPUs)")
    for benchmark, seed in job.runs:
        lines.append(" ".join(job.generate_command(benchmark, seed, server, sandbox)[2:]))
        lines.append(" ".join(job.evaluate_command(benchmark, seed, sandbox)[2:]))
    lines.append(" ".join(job.summarize_command()[2:]))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, overrides = build_parser().parse_known_args(argv)
    cluster = load_cluster_config(args.cluster)
    models = parse_models(args.model)
    if args.watch is not None or len(models) > 1:
        return run_sweep(args, overrides, cluster, models)
    return run_one(args, overrides, cluster)


def run_sweep(args: argparse.Namespace, overrides: list[str], cluster: ClusterConfig, models: list) -> int:
    """Several checkpoints, each into its own dir under ``--output-dir`` (see :mod:`nemo_eval.pipeline.sweep`)."""
    if args.watch is not None and args.model is not None:
        raise UserError("--watch takes the checkpoints from its directory: leave out --model")
    if args.watch is not None and args.dry_run:
        raise UserError("--watch runs until stopped; --dry-run shows one evaluation: use --model PATH --dry-run")
    check_output_dir(args.output_dir.expanduser().resolve())
    args.submitted = cluster.executor == "slurm" and not args.wait
    runs = parse_benchmark_runs(args.benchmarks)
    spec = ",".join(f"{b}:{sum(1 for n, s in runs if n == b and s is not None)}"
                    for b in dict.fromkeys(n for n, _ in runs))

    def summarize() -> None:
        if args.submitted:
            return   # the jobs run later: summarize-results over the dir once they are done
        from nemo_eval.metrics import summarize_results

        try:
            summarize_results.main([str(args.output_dir), "--benchmarks", spec])
        except UserError as error:
            print(f"{PROG}: no sweep summary: {error}", file=sys.stderr)

    def one(checkpoint_args: argparse.Namespace) -> int:
        return run_one(checkpoint_args, overrides, cluster)

    if args.watch is not None:
        return watch(args, args.watch, get_server_type(args.server_type).name == "openai", one, summarize)
    return run_models(args, models, lambda checkpoint: plan_job(checkpoint, overrides, cluster), one, summarize)


def run_one(args: argparse.Namespace, overrides: list[str], cluster: ClusterConfig) -> int:
    """One evaluation (one model into ``args.output_dir``)."""
    job = plan_job(args, overrides, cluster)
    if cluster.executor == "slurm":
        if cluster.ssh_tunnel:
            check_ssh(cluster.ssh_tunnel)
        check_slurm_sandbox(cluster)
        return run_slurm(job, cluster, dry_run=args.dry_run, wait=args.wait)
    if args.wait:
        raise UserError("--wait is for Slurm clusters; a local run always waits")
    if args.dry_run:
        print(describe(job))
        return 0
    if job.server_address:
        check_server_reachable(job.server_address)
    code = run_local(job, cluster)
    if code == 0:
        print(f"{PROG}: done; metrics in {job.output_dir / METRICS_NAME}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
