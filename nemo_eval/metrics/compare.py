"""``nemo-eval compare <out_dir_a> <out_dir_b>``: is B better than A, and is the difference real?

For every benchmark graded in both output directories, on the items both runs hold (matched by
``id``):

- greedy accuracy of A and B, the difference B - A, the exact McNemar p-value, and the items that
  flipped (wrong in A and right in B: ``improved``; the other way: ``regressed``);
- for sampled runs with the same number of seeds k: ``pass@1[avg-of-k]``, ``majority@k`` and
  ``pass@k``, each with a paired bootstrap 95% interval of the difference.

A difference is called significant when p < alpha (McNemar) or the interval excludes 0
(bootstrap). ``--json`` writes everything, including the flipped ids, to a file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError, run_main
from nemo_eval.jsonl import atomic_write_text
from nemo_eval.metrics.compute import graded_by_id, vote_key
from nemo_eval.metrics.estimators import majority_credit, pass_at_k
from nemo_eval.metrics.significance import mcnemar_exact, paired_bootstrap
from nemo_eval.run_layout import GREEDY_NAME, find_benchmark_files, sampled_seed

PROG = "nemo-eval compare"
SHOWN_FLIPS = 10


def per_item_scores(paths: list[Path]) -> dict[str, dict[str, float]]:
    """``{row: {id: score}}`` for one run of one benchmark (rows as in compute-metrics)."""
    scores: dict[str, dict[str, float]] = {}
    greedy = [p for p in paths if p.name == GREEDY_NAME]
    if greedy:
        scores["greedy"] = {key: float(bool(line["is_correct"])) for key, line in graded_by_id(greedy[0]).items()}
    runs = [graded_by_id(p) for p in paths if sampled_seed(p) is not None]
    if runs:
        k = len(runs)
        ids = set.intersection(*(set(run) for run in runs))
        scores[f"pass@1[avg-of-{k}]"] = {i: sum(bool(run[i]["is_correct"]) for run in runs) / k for i in ids}
        scores[f"pass@{k}"] = {i: pass_at_k(k, sum(bool(run[i]["is_correct"]) for run in runs), k) for i in ids}
        if all("predicted_answer" in run[i] for run in runs for i in ids):
            scores[f"majority@{k}"] = {i: majority_credit([vote_key(run[i]["predicted_answer"]) for run in runs],
                                                          [bool(run[i]["is_correct"]) for run in runs]) for i in ids}
    return scores


def compare_benchmark(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], alpha: float,
                      resamples: int) -> list[dict[str, Any]]:
    """One result dict per row both runs have."""
    results = []
    for row in [r for r in a if r in b]:
        ids = sorted(set(a[row]) & set(b[row]))
        if not ids:
            continue
        xs, ys = [a[row][i] for i in ids], [b[row][i] for i in ids]
        result: dict[str, Any] = {"row": row, "num_paired": len(ids), "a": round(100 * sum(xs) / len(ids), 2),
                                  "b": round(100 * sum(ys) / len(ids), 2)}
        result["delta"] = round(result["b"] - result["a"], 2)
        if row == "greedy":
            improved = [i for i, x, y in zip(ids, xs, ys) if y > x]
            regressed = [i for i, x, y in zip(ids, xs, ys) if x > y]
            p_value = mcnemar_exact(len(regressed), len(improved))
            result.update(test="exact McNemar", p_value=round(p_value, 6), significant=p_value < alpha,
                          improved=improved, regressed=regressed)
        else:
            _, low, high = paired_bootstrap(xs, ys, resamples=resamples, confidence=1 - alpha)
            result.update(test="paired bootstrap", ci_low=round(100 * low, 2), ci_high=round(100 * high, 2),
                          significant=low > 0 or high < 0)
        results.append(result)
    return results


def render(benchmark: str, results: list[dict[str, Any]], alpha: float) -> str:
    header = ["metric", "A", "B", "B - A", "test", f"p / {100 * (1 - alpha):g}% CI", "significant"]
    body = []
    for r in results:
        evidence = f"p={r['p_value']:.4g}" if "p_value" in r else f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
        body.append([r["row"], f"{r['a']:.2f}", f"{r['b']:.2f}", f"{r['delta']:+.2f}", r["test"], evidence,
                     "yes" if r["significant"] else "no"])
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = [f"{benchmark} ({results[0]['num_paired']} paired items)" if results else benchmark]
    lines += [" | ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header] + body]
    for r in results:
        if r["row"] == "greedy":
            for label, ids in (("improved (wrong in A, right in B)", r["improved"]),
                               ("regressed (right in A, wrong in B)", r["regressed"])):
                shown = ", ".join(ids[:SHOWN_FLIPS]) + (f", ... (+{len(ids) - SHOWN_FLIPS})" if len(ids) > SHOWN_FLIPS else "")
                lines.append(f"  {len(ids)} {label}" + (f": {shown}" if ids else ""))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(
        prog=PROG, description="Compare two runs benchmark by benchmark on the same items: accuracy of each, the "
                               "difference with a paired significance test (exact McNemar for greedy, paired "
                               "bootstrap for sampled metrics) and the items that flipped either way.")
    parser.add_argument("out_dir_a", type=Path, help="output directory of run A (the baseline)")
    parser.add_argument("out_dir_b", type=Path, help="output directory of run B (the candidate)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--bootstrap-samples", type=int, default=10000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--json", type=Path, default=None, help="also write all results, with flipped ids, here")
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 1 or args.bootstrap_samples < 100:
        raise UserError("--alpha must be in (0, 1) and --bootstrap-samples at least 100")
    found = []
    for directory in (args.out_dir_a, args.out_dir_b):
        if not directory.is_dir():
            raise UserError(f"{directory} is not a directory")
        files = find_benchmark_files(directory)
        if not files:
            raise UserError(f"no <benchmark>/output-greedy.jsonl or output-rs<seed>.jsonl files under {directory}")
        found.append(files)
    common = [name for name in found[0] if name in found[1]]
    if not common:
        raise UserError(f"the runs share no benchmark ({', '.join(found[0])} vs {', '.join(found[1])})")
    report: dict[str, list[dict[str, Any]]] = {}
    for benchmark in common:
        results = compare_benchmark(per_item_scores(found[0][benchmark]), per_item_scores(found[1][benchmark]),
                                    args.alpha, args.bootstrap_samples)
        if not results:
            print(f"{benchmark}: no metric with items in common (different seeds counts or ids?)", file=sys.stderr)
            continue
        report[benchmark] = results
        print(render(benchmark, results, args.alpha) + "\n")
    only = sorted(set(found[0]) ^ set(found[1]))
    if only:
        print(f"not compared (in one run only): {', '.join(only)}", file=sys.stderr)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
