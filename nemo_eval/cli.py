"""The ``nemo-eval`` console script: one subcommand per step.

Each subcommand is a module with a ``main(argv)`` function, imported only when used so that
``nemo-eval --help`` stays fast. Every step is also runnable as ``python -m <module>``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from nemo_eval import __version__
from nemo_eval.errors import run_main

# name -> (module, one-line description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("nemo_eval.pipeline.eval", "run benchmarks end to end: sandbox + server + generation + evaluation + metrics"),
    "prepare-data": ("nemo_eval.datasets.prepare", "download, verify and convert benchmarks into uniform JSONL"),
    "show-prompt": ("nemo_eval.prompts.show_prompt", "print the exact prompt the model would see for one benchmark item"),
    "generate": ("nemo_eval.inference.generate", "generate solutions for one benchmark/input file against a server"),
    "evaluate": ("nemo_eval.evaluation.evaluate", "grade generations: extract answers, check them (math) or run tests (code)"),
    "judge": ("nemo_eval.evaluation.judge", "ask a judge model whether predicted answers match the reference, next to the symbolic grader"),
    "compute-metrics": ("nemo_eval.metrics.compute_metrics", "compute metrics for one benchmark's prediction files"),
    "summarize-results": ("nemo_eval.metrics.summarize_results", "summarize every benchmark under an output dir into a table and metrics.json"),
    "compare": ("nemo_eval.metrics.compare", "compare two runs per benchmark with paired significance tests and flipped items"),
    "view": ("nemo_eval.viewer.serve", "browse runs in a web browser: metrics, samples, one sample, comparisons, trends"),
    "reward-server": ("nemo_eval.rewards.server", "serve the reward functions (math, format, code, veRL) over HTTP for trainers"),
    "sandbox": ("nemo_eval.sandbox.cli", "start the code-execution sandbox service (nemo-eval sandbox start)"),
    "list-benchmarks": ("nemo_eval.datasets.list_benchmarks", "list the known benchmarks with their defaults"),
}


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"usage: nemo-eval <command> [args...]   (nemo-eval {__version__})", "",
             "Evaluate large language models reproducibly: locally or on Slurm, with sandboxed code execution.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    lines += ["", "Run 'nemo-eval <command> --help' for a command's options. Docs: docs/ in the repository."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``nemo-eval <command> ...`` to the command's module."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"nemo-eval {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        print(f"nemo-eval: error: unknown command {command!r}; commands: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    return run_main(f"nemo-eval {command}", module.main, rest)


if __name__ == "__main__":
    raise SystemExit(main())
