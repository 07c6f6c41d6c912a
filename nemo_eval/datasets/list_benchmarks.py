"""``nemo-eval list-benchmarks``: the known benchmarks, their splits and defaults."""

from __future__ import annotations

import json
from typing import Sequence

from nemo_eval.arguments import Parser
from nemo_eval.datasets.spec import BENCHMARKS, get_benchmark
from nemo_eval.errors import run_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(
        prog="nemo-eval list-benchmarks",
        description="List the known benchmarks (bundled ones and folders in NEMO_EVAL_EXTRA_BENCHMARKS) "
                    "with their splits and default prompt, few-shot set, evaluation type and generation length.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    specs = [get_benchmark(name) for name in BENCHMARKS.names()]
    if args.json:
        print(json.dumps({s.name: {"description": s.description, "splits": list(s.splits),
                                   "defaults": s.defaults.__dict__, "folder": str(s.folder)} for s in specs}, indent=1))
        return 0
    rows = [("benchmark", "eval", "metrics", "splits", "prompt config", "few-shot", "tokens")]
    for s in specs:
        shots = f"{s.defaults.examples_type} x{s.defaults.num_few_shots}" if s.defaults.num_few_shots else "-"
        rows.append((s.name, s.defaults.eval_type, s.defaults.metrics_type, ",".join(s.splits), s.defaults.prompt_config, shots,
                     str(s.defaults.tokens_to_generate)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main("nemo-eval list-benchmarks", main))
