"""Math grading speed and agreement: our sandboxed grader next to math-verify in-process, same run.

Both graders get the same lines (a generation and its expected answer) and do the whole job:
find the answer in the generation, decide equivalence. Ours extracts in this process and decides
in the sandbox (batches, all sandbox workers); math-verify (``pip install 'math-verify[antlr4_13_2]'``)
parses and verifies in this process, one line after the other, as it is normally used.

Without ``--files``, a corpus is built from the prepared MATH-500 and GSM8K test sets
(``nemo-eval prepare-data math-500 gsm8k``): each reference solution against its own answer
(should be equal), each expected answer boxed against the next item's (mostly not equal), and
each integer answer plus one (never equal), and each numeric answer rewritten in an equivalent form
(``0.5`` for ``\\frac{1}{2}``, ``18.0`` for ``18``).

Prints cases/s of each, the ratio, the agreement, and examples where the two disagree.
Usage: ``python benchmarks/grading.py --sandbox http://127.0.0.1:6000`` (start one with
``sudo nemo-eval sandbox start``), or ``--files a.jsonl b.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_eval.datasets.prepare import default_data_dir  # noqa: E402
from nemo_eval.evaluation.answer_extraction import ExtractionConfig  # noqa: E402
from nemo_eval.evaluation.math_grader import grade_math_lines  # noqa: E402
from nemo_eval.evaluation.math_normalize import as_number  # noqa: E402


def _rewrite(answer: str) -> str | None:
    value = as_number(answer.strip())
    if value is None:
        return None
    if value.denominator == 1:
        return f"{value.numerator}.0"
    decimal = float(value)
    return repr(decimal) if Fraction(repr(decimal)) == value else None


def build_corpus(data_dir: Path) -> list[dict]:
    lines = []
    for benchmark in ("math-500", "gsm8k"):
        path = data_dir / benchmark / "test.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run nemo-eval prepare-data {benchmark}")
        items = [json.loads(line) for line in path.read_text().splitlines()]
        for index, item in enumerate(items):
            gold = item["expected_answer"]
            solution = item["reference_solution"]
            if benchmark == "gsm8k":
                solution = solution.rsplit("####", 1)[0] + f"The answer is $\\boxed{{{gold}}}$."
            lines.append({"expected_answer": gold, "generation": solution, "kind": "reference"})
            other = items[(index + 1) % len(items)]["expected_answer"]
            lines.append({"expected_answer": gold, "generation": f"So the answer is $\\boxed{{{other}}}$.",
                          "kind": "other item's answer"})
            value = as_number(gold.strip())
            if value is not None and value.denominator == 1:
                lines.append({"expected_answer": gold, "generation": f"The answer is $\\boxed{{{value.numerator + 1}}}$.",
                              "kind": "off by one"})
            rewritten = _rewrite(gold)
            if rewritten:
                lines.append({"expected_answer": gold, "generation": f"Therefore $\\boxed{{{rewritten}}}$.",
                              "kind": "numeric rewrite"})
    return lines


def run_ours(lines: list[dict], sandbox: str, concurrency: int) -> tuple[list[bool], float]:
    config = SimpleNamespace(sandbox_address=sandbox, timeout=10.0, max_concurrency=concurrency, math_batch_size=100,
                             extraction=ExtractionConfig())
    start = time.perf_counter()
    graded = grade_math_lines(lines, config)
    return [line["is_correct"] for line in graded], time.perf_counter() - start


def run_math_verify(lines: list[dict]) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    verdicts = []
    start = time.perf_counter()
    for line in lines:
        try:
            gold = parse(f"${line['expected_answer']}$")
            verdicts.append(bool(verify(gold, parse(line["generation"] or ""))))
        except Exception:  # noqa: BLE001 - math-verify raising counts as "not equal", as in its own harnesses
            verdicts.append(False)
    return verdicts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", default="http://127.0.0.1:6000", help="a running sandbox service")
    parser.add_argument("--files", nargs="*", type=Path, default=None, help="prediction files (generation + expected_answer)")
    parser.add_argument("--data-dir", type=Path, default=None, help="prepared data (default: nemo-eval's data dir)")
    parser.add_argument("--concurrency", type=int, default=8, help="sandbox executions at once (ours)")
    parser.add_argument("--examples", type=int, default=8, help="disagreements to print")
    args = parser.parse_args()
    if args.files:
        lines = [json.loads(row) for path in args.files for row in path.read_text().splitlines() if row.strip()]
    else:
        lines = build_corpus(args.data_dir or default_data_dir())
    ours, ours_seconds = run_ours(lines, args.sandbox, args.concurrency)
    theirs, theirs_seconds = run_math_verify(lines)
    n = len(lines)
    print(f"{n} cases")
    print(f"nemo-eval (sandboxed, {args.concurrency} at once): {ours_seconds:7.2f} s  {n / ours_seconds:8.1f} cases/s")
    print(f"math-verify (in-process, sequential):  {theirs_seconds:7.2f} s  {n / theirs_seconds:8.1f} cases/s")
    print(f"speed ratio nemo-eval / math-verify: {theirs_seconds / ours_seconds:.2f}x")
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"agreement: {agree}/{n} ({100 * agree / n:.2f}%)")
    kinds = sorted({line.get("kind", "file") for line in lines})
    for kind in kinds:
        picked = [i for i, line in enumerate(lines) if line.get("kind", "file") == kind]
        print(f"  {kind:<22} n={len(picked):5d}  nemo-eval equal {sum(ours[i] for i in picked):5d}  "
              f"math-verify equal {sum(theirs[i] for i in picked):5d}")
    shown = 0
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b and shown < args.examples:
            line = lines[index]
            tail = (line["generation"] or "")[-80:].replace("\n", " ")
            print(f"  disagree: nemo-eval={a} math-verify={b} expected={line['expected_answer']!r} ...{tail!r}")
            shown += 1


if __name__ == "__main__":
    main()
