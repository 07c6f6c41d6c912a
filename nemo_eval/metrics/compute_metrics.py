"""``python -m nemo_eval.metrics.compute_metrics`` (also ``nemo-eval compute-metrics``).

Metrics of one benchmark from its graded prediction files: accuracy with a 95% interval for a
greedy file; pass@1[avg-of-k], pass@j for every j <= k and majority@k for k sampled files;
no-answer rate and mean generated tokens, plus the values of the benchmark's metrics family
(its ``metrics_type``). Prints a table and the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError, run_main
from nemo_eval.jsonl import check_readable_file
from nemo_eval.metrics.compute import compute_metrics
from nemo_eval.metrics.families import METRICS, family_for, ordered_columns
from nemo_eval.metrics.report import table

PROG = "nemo-eval compute-metrics"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(
        prog=PROG, description="Compute metrics for one benchmark from graded prediction files (output-greedy.jsonl, "
                               "output-rs<seed>.jsonl): accuracy and its 95% interval, pass@k (Chen et al.), "
                               "pass@1[avg-of-k], majority@k, no-answer rate, mean tokens. Percentages are 0-100.")
    parser.add_argument("--prediction-jsonl-files", nargs="+", required=True, metavar="FILE", help="graded files")
    parser.add_argument("--benchmark", default=None, help="benchmark name for the output (default: the files' folder)")
    parser.add_argument("--metrics-type", default=None, metavar="TYPE",
                        help="metrics family: " + ", ".join(METRICS.names()) + " (default: the benchmark's metrics_type)")
    args = parser.parse_args(argv)
    paths = [Path(p).expanduser() for p in args.prediction_jsonl_files]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"prediction file(s) not found: {', '.join(missing)}")
    for path in paths:
        check_readable_file(path, "prediction file")
    benchmark = args.benchmark or paths[0].parent.name
    family = METRICS.get(args.metrics_type) if args.metrics_type else family_for(benchmark)
    rows = compute_metrics(paths, family.name)
    print(table(benchmark, rows, ordered_columns([family])))
    print(json.dumps({benchmark: rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
