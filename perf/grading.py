"""Math grading accuracy and speed: our isolated grader next to math-verify in-process, same run.

Accuracy: every case with a known verdict is graded by both: the hand-checked fixtures in
``tests/evaluation/fixtures/`` (answer pairs and whole responses), and, with
``--math-verify-tests DIR``, the cases of math-verify's own test suite (its ``tests/`` folder from the
sdist or a clone; ``gold, pred, expected`` rows of its parametrised tests, read with ``ast``). Printed
per source: cases right for each grader, and the cases where ours is wrong.

Speed: a corpus of **distinct** (response, gold) pairs built from the prepared MATH-500 and GSM8K
test sets (``nemo-eval prepare-data math-500 gsm8k``): each reference solution against its own
answer, each answer boxed against the next item's, each integer answer plus one, each numeric answer
rewritten (``18.0``, ``0.5``). Duplicates are dropped, also after extraction, so deduplication earns
nothing. Both graders do the whole job (extract, then decide); ours decides in the sandbox
(``--sandbox URL``, every worker busy) and/or in local isolated workers (``--local``); math-verify
(``pip install 'math-verify[antlr4_13_2]'``) runs in this process, one case after the other, as it is
normally used. Prints cases/s of each and the ratio.

Usage: ``python perf/grading.py --sandbox http://127.0.0.1:6000 --local``
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_eval.datasets.prepare import default_data_dir  # noqa: E402
from nemo_eval.evaluation import api  # noqa: E402
from nemo_eval.evaluation.answer_extraction import (ExtractionConfig, extract_answer, gold_answer,  # noqa: E402
                                                    is_bare_answer)
from nemo_eval.evaluation.math_normalize import as_number  # noqa: E402

FIXTURES = REPO / "tests" / "evaluation" / "fixtures"


# ---------------------------------------------------------------- cases with known verdicts
def fixture_cases() -> dict[str, list[tuple[str, str, bool]]]:
    pairs = [json.loads(line) for line in (FIXTURES / "math_equivalence.jsonl").read_text().splitlines()]
    responses = [json.loads(line) for line in (FIXTURES / "math_responses.jsonl").read_text().splitlines()]
    return {"fixtures: answer pairs": [(c["predicted"], c["expected"], c["equal"]) for c in pairs],
            "fixtures: whole responses": [(c["response"], c["expected"], c["equal"]) for c in responses]}


def math_verify_cases(tests_dir: Path) -> list[tuple[str, str, bool]]:
    """``(pred, gold, expected)`` from math-verify's parametrised tests (only rows naming gold and pred)."""
    cases = []
    for path in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
            for decorator in function.decorator_list:
                if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
                    continue
                try:
                    names = [n.strip() for n in ast.literal_eval(decorator.args[0]).split(",")]
                except (ValueError, SyntaxError, AttributeError):
                    continue
                for row in decorator.args[1].elts:
                    try:
                        values = dict(zip(names, eval(compile(ast.Expression(row), "case", "eval"), {"math": math})))
                    except Exception:  # noqa: BLE001 - a row we cannot read is skipped
                        continue
                    verdict = values.get("expected", values.get("result"))
                    if "gold" in values and "pred" in values and verdict in (0, 1, True, False):
                        cases.append((values["pred"], values["gold"], bool(verdict)))
    return cases


# ---------------------------------------------------------------- the speed corpus
def _rewrite(answer: str) -> str | None:
    value = as_number(answer.strip())
    if value is None:
        return None
    if value.denominator == 1:
        return f"{value.numerator}.0"
    decimal = float(value)
    return repr(decimal) if Fraction(repr(decimal)) == value else None


def build_corpus(data_dir: Path) -> list[tuple[str, str]]:
    lines = []
    for benchmark in ("math-500", "gsm8k"):
        path = data_dir / benchmark / "test.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run nemo-eval prepare-data {benchmark}")
        items = [json.loads(line) for line in path.read_text().splitlines()]
        for index, item in enumerate(items):
            gold, solution = item["expected_answer"], item["reference_solution"]
            if benchmark == "gsm8k":
                solution = solution.rsplit("####", 1)[0] + f"The answer is $\\boxed{{{gold}}}$."
            other = items[(index + 1) % len(items)]["expected_answer"]
            lines += [(solution, gold), (f"So the answer is $\\boxed{{{other}}}$.", gold)]
            value = as_number(gold.strip())
            if value is not None and value.denominator == 1:
                lines.append((f"The answer is $\\boxed{{{value.numerator + 1}}}$.", gold))
            if _rewrite(gold):
                lines.append((f"Therefore $\\boxed{{{_rewrite(gold)}}}$.", gold))
    distinct, seen = [], set()
    for generation, gold in dict.fromkeys(lines):
        key = (extract_answer(generation, ExtractionConfig())[0], gold_answer(gold))
        if key not in seen:
            seen.add(key)
            distinct.append((generation, gold))
    return distinct


# ---------------------------------------------------------------- graders
def math_verify(pairs: list[tuple[str, str]]) -> list[bool]:
    from math_verify import parse, verify

    def delimited(text: str) -> str:   # a bare answer gets $...$, as math-verify's LaTeX extraction expects
        bare = is_bare_answer(text) and not any(mark in text for mark in ("$", "\\(", "\\[", "\\boxed"))
        return f"${text}$" if bare else text

    verdicts = []
    for prediction, gold in pairs:
        try:
            verdicts.append(bool(verify(parse(delimited(gold)), parse(delimited(prediction or "")))))
        except Exception:  # noqa: BLE001 - math-verify raising counts as "not equal", as in its own harnesses
            verdicts.append(False)
    return verdicts


def ours(pairs: list[tuple[str, str]], sandbox: str | None) -> list[bool]:
    return api.math_equal_batch(pairs, sandbox=sandbox)


def timed(function, *args) -> tuple[list[bool], float]:
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", default=None, help="a running sandbox service, e.g. http://127.0.0.1:6000")
    parser.add_argument("--local", action="store_true", help="also time the local isolated workers (no sandbox)")
    parser.add_argument("--math-verify-tests", type=Path, default=None, help="math-verify's tests/ folder")
    parser.add_argument("--data-dir", type=Path, default=None, help="prepared data (default: nemo-eval's data dir)")
    parser.add_argument("--skip-speed", action="store_true", help="accuracy only")
    args = parser.parse_args()
    modes = ([("sandbox", args.sandbox)] if args.sandbox else []) + ([("local workers", None)] if args.local else [])
    if not modes:
        modes = [("local workers", None)]
    sources = fixture_cases()
    if args.math_verify_tests:
        sources["math-verify's test suite"] = math_verify_cases(args.math_verify_tests)
    print("ACCURACY (verdicts right / cases)")
    for name, cases in sources.items():
        pairs = [(p, g) for p, g, _ in cases]
        mine = ours(pairs, modes[0][1])
        theirs = math_verify(pairs)
        right_mine = sum(v == c[2] for v, c in zip(mine, cases))
        right_theirs = sum(v == c[2] for v, c in zip(theirs, cases))
        print(f"  {name:<28} n={len(cases):4d}  nemo-eval {right_mine:4d} ({100 * right_mine / len(cases):5.1f}%)  "
              f"math-verify {right_theirs:4d} ({100 * right_theirs / len(cases):5.1f}%)")
        for verdict, (prediction, gold, expected) in zip(mine, cases):
            if verdict != expected:
                print(f"      nemo-eval wrong: expected={expected} gold={gold[-60:]!r} pred={prediction[-80:]!r}")
    if args.skip_speed:
        return
    corpus = build_corpus(args.data_dir or default_data_dir())
    print(f"\nSPEED on {len(corpus)} distinct (response, gold) pairs from MATH-500 and GSM8K")
    theirs, theirs_seconds = timed(math_verify, corpus)
    print(f"  math-verify (in-process, sequential):   {theirs_seconds:7.2f} s  {len(corpus) / theirs_seconds:8.1f} cases/s")
    for name, address in modes:
        if address is None:
            ours(corpus[:4], None)   # start the workers outside the timing, as a training loop would
        mine, seconds = timed(ours, corpus, address)
        agree = sum(a == b for a, b in zip(mine, theirs))
        print(f"  nemo-eval, {name + ':':<28} {seconds:7.2f} s  {len(corpus) / seconds:8.1f} cases/s  "
              f"ratio {theirs_seconds / seconds:.2f}x  agreement {100 * agree / len(corpus):.2f}%")
    api.close()


if __name__ == "__main__":
    main()
