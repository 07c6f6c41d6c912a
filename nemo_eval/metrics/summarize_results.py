"""``python -m nemo_eval.metrics.summarize_results <out_dir>`` (also ``nemo-eval summarize-results``).

Finds every ``<out_dir>/<benchmark>/output-greedy.jsonl`` and ``output-rs<seed>.jsonl``, prints one
table per benchmark (the columns of its metrics family) and writes ``<out_dir>/metrics.json`` shaped
``{benchmark: {"greedy": {...}, "majority@4": {...}, "pass@4": {...}, ..., "usage": {...}}}``; ``usage``
holds the benchmark's token, time and cost totals over all its files (:mod:`nemo_eval.metrics.usage`),
and a table of them (with the run's total) is printed; both only when the lines record usage.
``--fail-under gsm8k.greedy.accuracy=80`` exits with code 3 naming every metric below its threshold.

Over a sweep (a dir of checkpoint output dirs, as ``nemo-eval eval --model A,B,C`` writes): a row per
checkpoint, charts, and gates against a baseline (:mod:`nemo_eval.metrics.sweep`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError, run_main
from nemo_eval.jsonl import atomic_write_text
from nemo_eval.metrics.compute import compute_metrics, load_graded, metric_value
from nemo_eval.metrics.families import family_for, ordered_columns
from nemo_eval.metrics.report import metrics_csv, per_example_csv, table
from nemo_eval.metrics.usage import USAGE_KEY, file_usage, usage_table
from nemo_eval.run_layout import METRICS_NAME, find_benchmark_files, output_name, parse_benchmark_runs

PROG = "nemo-eval summarize-results"
EXIT_BELOW_THRESHOLD = 3


def _thresholds(specs: list[str]) -> list[tuple[str, float]]:
    parsed = []
    for spec in specs:
        name, _, value = spec.partition("=")
        try:
            parsed.append((name.strip(), float(value)))
        except ValueError:
            raise UserError(f"--fail-under {spec!r} must look like benchmark.row.metric=NUMBER "
                            "(e.g. gsm8k.greedy.accuracy=80)") from None
        if name.count(".") < 2:
            raise UserError(f"--fail-under {spec!r}: name the metric as benchmark.row.metric, e.g. gsm8k.greedy.accuracy")
    return parsed


def _only(files: dict[str, list[Path]], spec: str) -> dict[str, list[Path]]:
    """Keep the files of the runs ``spec`` names (leftovers of earlier runs with other seeds go)."""
    wanted: dict[str, set[str]] = {}
    for benchmark, seed in parse_benchmark_runs(spec):
        wanted.setdefault(benchmark, set()).add(output_name(seed))
    kept = {b: [p for p in paths if p.name in wanted[b]] for b, paths in files.items() if b in wanted}
    return {b: paths for b, paths in kept.items() if paths}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(
        prog=PROG, description="Summarize every benchmark under an output directory: one table per benchmark and "
                               "<out_dir>/metrics.json (percentages 0-100).")
    parser.add_argument("out_dir", type=Path, help="the output directory of a run (holds <benchmark>/output-*.jsonl), "
                                                   "or of a sweep (holds <checkpoint>/<benchmark>/output-*.jsonl)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the metrics as CSV to this file")
    parser.add_argument("--per-example", type=Path, default=None,
                        help="write one CSV row per item (benchmark, file, id, problem, expected_answer, "
                             "predicted_answer, is_correct, num_generated_tokens)")
    parser.add_argument("--benchmarks", default=None, metavar="NAME:SEEDS,...",
                        help="summarize only these runs (as nemo-eval eval --benchmarks: greedy + seeds 0..N-1); "
                             "default: every output file found")
    parser.add_argument("--fail-under", action="append", default=[], metavar="BENCH.ROW.METRIC=VALUE",
                        help=f"exit with code {EXIT_BELOW_THRESHOLD} if the metric is below VALUE (repeatable)")
    sweep = parser.add_argument_group("sweeps (an output dir holding one dir per checkpoint)")
    sweep.add_argument("--baseline", default=None, metavar="NAME",
                       help="compare every checkpoint with this one (a checkpoint of the sweep, or an output dir) by "
                            "the paired tests of nemo-eval compare")
    sweep.add_argument("--require-better", action="store_true",
                       help=f"with --baseline: exit with code {EXIT_BELOW_THRESHOLD} unless every checkpoint is "
                            "significantly better than the baseline on every row compared")
    sweep.add_argument("--metrics", default=None, metavar="NAME,...",
                       help="the metrics in the sweep's table and charts, e.g. accuracy,no_answer,format_adherence "
                            "(default: accuracy)")
    sweep.add_argument("--best-by", default=None, metavar="BENCH.ROW.METRIC",
                       help="the metric that picks the best checkpoint (default: the first column)")
    sweep.add_argument("--alpha", type=float, default=0.05, help="significance level of the gates (default 0.05)")
    sweep.add_argument("--bootstrap-samples", type=int, default=10000, help="bootstrap resamples (default 10000)")
    args = parser.parse_args(argv)
    thresholds = _thresholds(args.fail_under)
    if not args.out_dir.is_dir():
        raise UserError(f"{args.out_dir} is not a directory")
    if args.require_better and not args.baseline:
        raise UserError("--require-better needs --baseline NAME (the checkpoint or output dir to beat)")
    if not 0 < args.alpha < 1 or args.bootstrap_samples < 100:
        raise UserError("--alpha must be in (0, 1) and --bootstrap-samples at least 100")
    from nemo_eval.metrics.sweep import is_sweep, summarize_sweep

    if is_sweep(args.out_dir):
        if args.per_example:
            raise UserError("--per-example is for one run's output dir; give a checkpoint's dir")
        only = (lambda found: _only(found, args.benchmarks)) if args.benchmarks else None
        failures = summarize_sweep(args.out_dir, args, thresholds, only)
        if failures:
            print(f"{PROG}: gate failed: {'; '.join(failures)}", file=sys.stderr)
            return EXIT_BELOW_THRESHOLD
        return 0
    if args.baseline or args.best_by or args.metrics:
        raise UserError(f"--baseline, --best-by and --metrics are for sweeps; {args.out_dir} is one run's output dir "
                        "(compare two runs with nemo-eval compare)")
    files = find_benchmark_files(args.out_dir)
    if args.benchmarks:
        files = _only(files, args.benchmarks)
    if not files:
        raise UserError(f"no <benchmark>/output-greedy.jsonl or output-rs<seed>.jsonl files under {args.out_dir}")
    families = {benchmark: family_for(benchmark) for benchmark in files}
    metrics = {benchmark: compute_metrics(paths, families[benchmark].name) for benchmark, paths in files.items()}
    for name, _ in thresholds:
        if metric_value(metrics, name) is None:
            raise UserError(f"--fail-under: no metric {name!r}; available rows: "
                            + "; ".join(f"{b}: {', '.join(rows)}" for b, rows in metrics.items()))
    for benchmark, rows in metrics.items():
        print(table(benchmark, rows, ordered_columns([families[benchmark]])) + "\n")
    usage = {benchmark: file_usage(paths) for benchmark, paths in files.items()}
    if any(totals["input_tokens"] or totals["request_seconds"] or "cost" in totals for totals in usage.values()):
        print(usage_table(usage) + "\n")  # only for lines that record usage (generated by nemo-eval since it does)
        for benchmark, totals in usage.items():
            metrics[benchmark][USAGE_KEY] = totals
    atomic_write_text(args.out_dir / METRICS_NAME, json.dumps(metrics, indent=1) + "\n")
    print(f"metrics written to {args.out_dir / METRICS_NAME}", file=sys.stderr)
    if args.csv:
        atomic_write_text(args.csv, metrics_csv(metrics, ordered_columns(families.values())))
    if args.per_example:
        atomic_write_text(args.per_example, per_example_csv(files, load_graded))
    failures = []
    for name, minimum in thresholds:
        value = metric_value(metrics, name)
        if value is not None and value < minimum:
            failures.append(f"{name} = {value:g} < {minimum:g}")
    if failures:
        print(f"{PROG}: below threshold: {'; '.join(failures)}", file=sys.stderr)
        return EXIT_BELOW_THRESHOLD
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
