"""lm-evaluation-harness's two ``minerva_math`` scores, as a standalone program for an isolated worker.

lm-eval 0.4.13 scores a ``minerva_math`` generation twice (its ``process_results``):

- ``exact_match``: the text between "Final Answer: The final answer is" and ". I hope it is correct."
  (``[invalidanswer]`` when absent), normalised with Minerva's rules (Lewkowycz et al. 2022, appendix D,
  as lm-eval 0.4.13 revised them), against the normalised last ``\\boxed{}`` of the reference solution;
  equal when the strings are identical or sympy's ``parse_latex`` of both differ by something that
  ``simplify`` makes 0 within 5 seconds.
- ``math_verify``: the ``math-verify`` package's ``verify(parse(solution), parse(generation))``.

Both parse model-written LaTeX with sympy, so this file runs only as a separate, jailed process
(:mod:`local_worker`), under a Python that has sympy, ``antlr4-python3-runtime`` 4.11 (sympy's LaTeX
parser) and ``math-verify`` — not nemo-eval's own environment, whose Hydra needs antlr 4.9
(:mod:`lm_eval_math` finds that Python). It imports only the standard library until it scores.

Protocol (that of ``math_equivalence --serve``): one JSON request per stdin line, ``{"nonce",
"pairs"}``, whose items are ``["exact_match", generation, solution, answer]`` or
``["math_verify", generation, solution, answer]``; each gets ``<nonce> <index> <1|0|E>``, and an
exact-match item first ``<nonce> answer <index> <json normalised answer>``; ``<nonce> done`` ends.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from typing import Any, Optional

INVALID = "[invalidanswer]"
CLOSING = "I hope it is correct."
# "." is any character here, as in lm-eval's pattern (so "$7$! I hope it is correct?" matches too)
FINAL_ANSWER = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")

# Minerva's normalisation tables (appendix D), in their order
SUBSTITUTIONS = (("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""), ("mbox", "text"),
                 (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"))
REMOVED_EXPRESSIONS = ("square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units",
                       "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
                       "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples",
                       "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}",
                       "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots")
UNIT_WORDS = tuple(word for word in REMOVED_EXPRESSIONS if word.isalpha())
COMMAND = re.compile(r"(\\[a-zA-Z]+)")
# (pattern, replacement) applied in order once units are gone: keep the first $...$, unwrap \text{},
# \textbf{}, \overline{} and \boxed{}, brace shorthand \frac12 and \sqrt2 (not the index of \sqrt[3]{8})
REWRITES = tuple((re.compile(pattern), replacement) for pattern, replacement in (
    (r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$"),
    (r"(\\text\{)(.*?)(\})", "\\2"),
    (r"(\\textbf\{)(.*?)(\})", "\\2"),
    (r"(\\overline\{)(.*?)(\})", "\\2"),
    (r"(\\boxed\{)(.*)(\})", "\\2"),
    (r"(frac)([^{])(.)", "frac{\\2}{\\3}"),
    (r"(sqrt)(\[[^\]]*\])(\w)", "\\1\\2{\\3}"),
    (r"(sqrt)(?!\[)([^{])", "sqrt{\\2}"),
))
THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+")
EQUIV_SECONDS = 5


def unnormalized_answer(generation: str) -> str:
    """What follows "Final Answer: The final answer is" up to ". I hope it is correct.", else ``[invalidanswer]``."""
    found = FINAL_ANSWER.search(generation + CLOSING)
    return found.group(1).strip() if found else INVALID


def _drop_units(text: str, word: str) -> str:
    """``word`` removed from ``text`` except inside LaTeX command names (``ft`` must not break ``\\left``)."""
    pieces = COMMAND.split(text)
    return "".join(piece if index % 2 else piece.replace(word, "") for index, piece in enumerate(pieces))


def normalize_final_answer(answer: str) -> str:
    """Minerva's normalisation of a final answer, as lm-eval 0.4.13 applies it."""
    answer = answer.split("=")[-1]
    for word in UNIT_WORDS:     # whole unit words first, while spaces still separate them
        answer = re.sub(rf"(?<!\\)\b{word}\b", "", answer)
    for before, after in SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expression in REMOVED_EXPRESSIONS:
        answer = _drop_units(answer, expression) if expression.isalpha() else answer.replace(expression, "")
    for pattern, replacement in REWRITES:
        answer = pattern.sub(replacement, answer)
    answer = answer.replace("$", "")
    return answer.replace(",", "") if THOUSANDS.fullmatch(answer) else answer


def last_boxed(solution: str) -> Optional[str]:
    """The last ``\\boxed{...}`` (or ``\\boxed x`` up to a ``$``, or ``\\fbox{...}``) of a solution, marker included."""
    if "\\boxed " in solution:
        return "\\boxed " + solution.split("\\boxed ")[-1].split("$")[0]
    start = solution.rfind("\\boxed")
    if start < 0:
        start = solution.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for position in range(start, len(solution)):
        if solution[position] == "{":
            depth += 1
        elif solution[position] == "}":
            depth -= 1
            if depth == 0:
                return solution[start:position + 1]
    return None


def gold_answer(solution: str, answer: str) -> str:
    """The reference answer lm-eval compares with: the solution's last box, normalised.

    lm-eval requires a ``\\boxed`` solution (it fails on any other); here a solution without one, or
    a benchmark without solutions, falls back to the dataset's own answer.
    """
    boxed = last_boxed(solution or "")
    if boxed is not None and boxed.startswith("\\boxed "):
        return normalize_final_answer(boxed[len("\\boxed "):])
    if boxed is not None and boxed.startswith("\\boxed{") and boxed.endswith("}"):
        return normalize_final_answer(boxed[len("\\boxed{"):-1])
    return normalize_final_answer(answer)


class _OutOfTime(Exception):
    pass


def _out_of_time(signum: int, frame: Any) -> None:
    raise _OutOfTime()


def is_equiv(predicted: str, expected: str) -> bool:
    """lm-eval's equivalence of two normalised answers: identical, or ``simplify(a - b) == 0`` within 5 s."""
    if predicted and predicted == expected:
        return True
    from sympy import simplify
    from sympy.parsing.latex import parse_latex

    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(EQUIV_SECONDS)
    try:
        return bool(simplify(parse_latex(predicted) - parse_latex(expected)) == 0)
    except ImportError:
        raise           # no antlr 4.11: every item would fail, so the batch stops and says so
    except Exception:  # noqa: BLE001 - lm-eval counts every failure (its timeout too) as not equal
        return False
    finally:
        signal.alarm(0)


def math_verify_correct(generation: str, solution: str, answer: str) -> bool:
    """``math-verify``'s verdict with its defaults (gold: the solution, else the answer in ``$...$``)."""
    from math_verify import parse, verify

    gold = parse(solution if solution else f"${answer}$")
    return bool(verify(gold=gold, target=parse(generation)))


def score(item: list, nonce: str, index: int) -> str:
    kind, generation, solution, answer = item
    try:
        if kind == "exact_match":
            predicted = normalize_final_answer(unnormalized_answer(generation))
            sys.stdout.write(f"{nonce} answer {index} {json.dumps(predicted)}\n")
            return "1" if is_equiv(predicted, gold_answer(solution, answer)) else "0"
        return "1" if math_verify_correct(generation, solution, answer) else "0"
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 - one bad item (recursion, memory, timer) must not stop the batch
        return "E"


def main() -> None:
    sys.setrecursionlimit(5000)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        nonce = request["nonce"]
        for index, item in enumerate(request["pairs"]):
            sys.stdout.write(f"{nonce} {index} {score(item, nonce, index)}\n")
            sys.stdout.flush()
        sys.stdout.write(f"{nonce} done\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
