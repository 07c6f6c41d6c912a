"""``summarize-results`` over a sweep: one output dir per checkpoint, a row per checkpoint, gates.

A sweep dir holds ``<checkpoint>/<benchmark>/output-*.jsonl`` (what ``nemo-eval eval --model A,B,C``
or ``--watch`` writes, listing the checkpoints in order in ``sweep.json``). Summarizing it writes each
checkpoint's ``metrics.json`` and, in the sweep dir, ``sweep.csv`` and ``sweep.md`` (a row per
checkpoint, a column per metric ``benchmark.row.metric`` for the metrics ``--metrics`` names, accuracy
by default, the best checkpoint marked) and ``charts/<column>.svg`` (the metric over the checkpoints,
accuracy with its 95% confidence interval).

Gates (exit code 3 and one line naming every failure):

- ``--fail-under BENCH.ROW.METRIC=VALUE``: every checkpoint must reach VALUE;
- ``--baseline NAME`` (a checkpoint of the sweep, or another output dir) compares every checkpoint with
  it by ``nemo-eval compare``'s paired tests; ``--require-better`` then fails every checkpoint that is not
  significantly better (difference > 0 and significant at ``--alpha``) on every row compared.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from nemo_eval.errors import UserError
from nemo_eval.jsonl import atomic_write_text
from nemo_eval.metrics.compare import compare_benchmark, per_item_scores
from nemo_eval.metrics.compute import compute_metrics, metric_value
from nemo_eval.metrics.families import family_for
from nemo_eval.metrics.trend_chart import TrendPoint, render_trend_svg
from nemo_eval.run_layout import METRICS_NAME, find_benchmark_files

SWEEP_NAME = "sweep.json"
MAIN_METRIC = "accuracy"


def natural_key(name: str) -> list[Any]:
    """``step_2`` before ``step_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def checkpoints(sweep_dir: Path) -> list[tuple[str, Path]]:
    """The checkpoints of a sweep dir in order: ``sweep.json``'s order, then the others by name (naturally)."""
    listed: list[str] = []
    record = sweep_dir / SWEEP_NAME
    if record.is_file():
        try:
            listed = [entry["name"] for entry in json.loads(record.read_text(encoding="utf-8"))["checkpoints"]]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{record} is corrupt (not the record nemo-eval eval writes); fix or remove it") from None
    found = {p.name for p in sweep_dir.iterdir() if p.is_dir() and find_benchmark_files(p)}
    ordered = [name for name in listed if name in found] + sorted(found - set(listed), key=natural_key)
    return [(name, sweep_dir / name) for name in ordered]


def is_sweep(out_dir: Path) -> bool:
    """A dir with no benchmark outputs of its own whose subdirs have some (or a ``sweep.json``)."""
    return (out_dir / SWEEP_NAME).is_file() or (not find_benchmark_files(out_dir) and bool(checkpoints(out_dir)))


def sweep_metrics(points: list[tuple[str, Path]], only=None) -> dict[str, dict[str, Any]]:
    """``{checkpoint: metrics.json content}``, each checkpoint's metrics.json written on the way."""
    result = {}
    for name, path in points:
        files = find_benchmark_files(path)
        if only is not None:
            files = only(files)
        metrics = {b: compute_metrics(paths, family_for(b).name) for b, paths in files.items()}
        atomic_write_text(path / METRICS_NAME, json.dumps(metrics, indent=1) + "\n")
        result[name] = metrics
    return result


def columns_of(metrics: dict[str, dict[str, Any]], names: Sequence[str] = (MAIN_METRIC,)) -> list[str]:
    """``benchmark.row.metric`` for every row any checkpoint has and every metric in ``names``, first seen first."""
    seen: dict[str, None] = {}
    for per_checkpoint in metrics.values():
        for benchmark, rows in per_checkpoint.items():
            for row, values in rows.items():
                for name in names:
                    if isinstance(values.get(name), (int, float)):
                        seen[f"{benchmark}.{row}.{name}"] = None
    return list(seen)


def _interval(metrics: dict[str, Any], column: str) -> tuple[Optional[float], Optional[float]]:
    """The 95% interval of an accuracy column (the rows' ``ci95_low``/``ci95_high``), else ``(None, None)``."""
    benchmark, rest = column.split(".", 1)
    row, name = rest.rsplit(".", 1)
    if name != MAIN_METRIC:
        return None, None
    values = metrics.get(benchmark, {}).get(row, {})
    return values.get("ci95_low"), values.get("ci95_high")


def best_of(metrics: dict[str, dict[str, Any]], column: str) -> Optional[str]:
    """The checkpoint with the highest value of ``column`` (the first one on a tie)."""
    values = [(metric_value(m, column), name) for name, m in metrics.items()]
    values = [(value, name) for value, name in values if value is not None]
    return max(values, key=lambda item: item[0])[1] if values else None


def higher_is_better(column: str) -> bool:
    """Whether a higher value of the column's metric is better (accuracies, format shares); others get no mark."""
    name = column.rsplit(".", 1)[-1]
    return "accuracy" in name or name in ("format_adherence", "reasoning_format")


def render_markdown(metrics: dict[str, dict[str, Any]], columns: list[str], best: Optional[str]) -> str:
    bests = {column: best_of(metrics, column) if higher_is_better(column) else None for column in columns}
    lines = ["| checkpoint | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, values in metrics.items():
        cells = []
        for column in columns:
            value = metric_value(values, column)
            low, high = _interval(values, column)
            text = "" if value is None else f"{value:g}" + (f" [{low:g}, {high:g}]" if low is not None else "")
            cells.append(f"**{text}**" if text and bests[column] == name else text)
        label = f"{name} (best)" if name == best else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_csv(metrics: dict[str, dict[str, Any]], columns: list[str], best: Optional[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["checkpoint", "best"] + columns)
    for name, values in metrics.items():
        writer.writerow([name, int(name == best)] + ["" if metric_value(values, c) is None else metric_value(values, c)
                                                     for c in columns])
    return out.getvalue()


def write_charts(sweep_dir: Path, metrics: dict[str, dict[str, Any]], columns: list[str]) -> list[Path]:
    charts = sweep_dir / "charts"
    charts.mkdir(exist_ok=True)
    written = []
    for column in columns:
        best = best_of(metrics, column) if higher_is_better(column) else None
        points = []
        for name, values in metrics.items():
            value = metric_value(values, column)
            low, high = _interval(values, column)
            points.append(TrendPoint(name, float("nan") if value is None else float(value), low, high, name == best))
        path = charts / (re.sub(r"[^A-Za-z0-9_.@+-]", "_", column) + ".svg")
        atomic_write_text(path, render_trend_svg(column, points, y_label=column.rsplit(".", 1)[1]))
        written.append(path)
    return written


def _baseline(name: str, points: list[tuple[str, Path]]) -> tuple[str, Path]:
    for checkpoint, path in points:
        if checkpoint == name:
            return checkpoint, path
    path = Path(name)
    if path.is_dir() and find_benchmark_files(path):
        return path.name, path
    raise UserError(f"--baseline {name!r} is neither a checkpoint of this sweep ({', '.join(c for c, _ in points)}) "
                    "nor an output dir with results")


def compare_with_baseline(points: list[tuple[str, Path]], baseline: str, alpha: float,
                          resamples: int) -> tuple[str, list[str]]:
    """The comparison table of every checkpoint against the baseline, and the checkpoints not significantly better."""
    base_name, base_path = _baseline(baseline, points)
    base_files = find_benchmark_files(base_path)
    base_scores = {b: per_item_scores(paths) for b, paths in base_files.items()}
    lines = [f"against the baseline {base_name} (paired tests of nemo-eval compare, alpha {alpha:g}):",
             "checkpoint | benchmark | row | B - A | p / CI | significantly better"]
    not_better = []
    for name, path in points:
        if path.resolve() == base_path.resolve():
            continue
        reasons = []
        for benchmark, paths in find_benchmark_files(path).items():
            if benchmark not in base_scores:
                continue
            for result in compare_benchmark(base_scores[benchmark], per_item_scores(paths), alpha, resamples):
                better = result["significant"] and result["delta"] > 0
                evidence = (f"p={result['p_value']:.4g}" if "p_value" in result
                            else f"[{result['ci_low']:+.2f}, {result['ci_high']:+.2f}]")
                lines.append(f"{name} | {benchmark} | {result['row']} | {result['delta']:+.2f} | {evidence} | "
                             f"{'yes' if better else 'no'}")
                if not better:
                    reasons.append(f"{benchmark} {result['row']} {result['delta']:+.2f} ({evidence})")
        if reasons:
            not_better.append(f"{name} is not significantly better than {base_name}: {', '.join(reasons)}")
    return "\n".join(lines), not_better


def summarize_sweep(sweep_dir: Path, args: Any, thresholds: list[tuple[str, float]], only=None) -> list[str]:
    """Write the sweep's tables and charts, print them; returns the gate failures (empty: all passed)."""
    points = checkpoints(sweep_dir)
    if not points:
        raise UserError(f"no checkpoint dirs with results under {sweep_dir}")
    if args.baseline:
        _baseline(args.baseline, points)   # a bad name is refused before anything is written
    metrics = sweep_metrics(points, only)
    names = [name.strip() for name in (args.metrics or MAIN_METRIC).split(",") if name.strip()]
    columns = columns_of(metrics, names)
    missing = [name for name in names if not any(column.endswith("." + name) for column in columns)]
    if missing:
        raise UserError(f"--metrics: no checkpoint has {', '.join(missing)}; the metrics of its rows are "
                        + ", ".join(sorted({k for m in metrics.values() for rows in m.values() for r in rows.values()
                                            for k, v in r.items() if isinstance(v, (int, float))})))
    best_by = args.best_by or (columns[0] if columns else None)
    if best_by and best_by not in columns and all(metric_value(m, best_by) is None for m in metrics.values()):
        raise UserError(f"--best-by: no metric {best_by!r}; the columns are {', '.join(columns)}")
    for name, _ in thresholds:
        if all(metric_value(m, name) is None for m in metrics.values()):
            raise UserError(f"--fail-under: no metric {name!r} in any checkpoint; the columns are {', '.join(columns)}")
    best = best_of(metrics, best_by) if best_by else None
    markdown = render_markdown(metrics, columns, best)
    print(markdown)
    atomic_write_text(sweep_dir / "sweep.md", markdown)
    atomic_write_text(args.csv or sweep_dir / "sweep.csv", render_csv(metrics, columns, best))
    charts = write_charts(sweep_dir, metrics, columns)
    print(f"best checkpoint by {best_by}: {best}; wrote {sweep_dir / 'sweep.md'}, {args.csv or sweep_dir / 'sweep.csv'} "
          f"and {len(charts)} chart(s) in {sweep_dir / 'charts'}", file=sys.stderr)
    failures = []
    for name, minimum in thresholds:
        for checkpoint, values in metrics.items():
            value = metric_value(values, name)
            if value is not None and value < minimum:
                failures.append(f"{checkpoint}: {name} = {value:g} < {minimum:g}")
    if args.baseline:
        table, not_better = compare_with_baseline(points, args.baseline, args.alpha, args.bootstrap_samples)
        print("\n" + table)
        if args.require_better:
            failures += not_better
    return failures
