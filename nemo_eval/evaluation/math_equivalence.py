"""Is a predicted math answer equivalent to the expected one? The program that runs inside the sandbox.

This file, with ``math_normalize.py``, ``math_structure.py`` and ``math_latex.py`` inlined where
they are imported, is what the math grader runs in the sandbox (or in the local isolated worker).
It reads ``{"nonce", "timeout", "pairs": [[predicted, expected], ...]}`` on stdin and prints
``<nonce> <index> <verdict>`` per pair as soon as it is decided (``1`` equal, ``0`` not, ``T`` timed
out, ``E`` grader error), so a batch killed at the sandbox's hard limit still reports every pair
before the one that hung; past the request's ``budget`` seconds it prints ``<nonce> yield`` and
leaves the rest to a new request, so only a pair that really hangs is ever killed. ``--serve`` reads one such request per line and answers each with a
``<nonce> done`` line (a long-lived worker). Sympy is imported only when a pair needs it.

How two answers are compared (the expected answer's form decides; docs/evaluation.md has the list):

1. equal canonical strings (:func:`normalize_answer`); a multiple-choice letter when the expected
   answer is one;
2. structure (:func:`parse_answer`): lists and sets in any order, tuples in order, intervals and
   inequalities as sets of numbers, matrices element-wise, equations as equations; a label on either
   side (``x = 3``, ``(a,b) = (4,1)``, ``A:B = 5:7``) and the steps of a chain (``x = 3+4 = 7``) are
   dropped when the other side has none;
3. values: exact numbers; a decimal matches an exact value when it is that value rounded or cut to
   the decimals written and has at least three significant digits (``0.333`` is ``1/3``, ``0.33`` is not;
   ``2000.1`` is never ``2000``); otherwise sympy: structurally equal, or equal at 40 digits (numbers)
   or at random points (expressions with variables);
4. a percent on one side only: ``50%`` matches ``50`` and ``0.5``.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from typing import Any, Optional

from nemo_eval.evaluation.math_latex import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_normalize import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_sets import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_structure import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_values import *  # noqa: F401,F403  (inlined in the sandbox program)


# ---------------------------------------------------------------- structures
def _strip_label(node: tuple, other: tuple, predicted: bool) -> tuple:
    """``x = 3`` -> ``3``, ``x = 3+4 = 7`` -> ``7`` when compared with something that is not an equation.

    A predicted equation always gives its last side (``\\frac{1}{2} = \\frac{10}{9}`` states ``10/9``); an
    expected one only when its left side is a label, so ``2x + z = 1`` never matches ``1``.
    """
    if node[0] == "relation" and set(node[2]) == {"="} and not _is_equation(other):
        sides = node[1]
        if predicted or len(sides) > 2 or is_label(sides[0]):
            return parse_answer(sides[-1])
    return node


def _is_equation(node: tuple) -> bool:
    return node[0] == "relation" and set(node[2]) == {"="}


def _equations_match(predicted: tuple, expected: tuple) -> bool:
    p_sides, g_sides = predicted[1], expected[1]
    if len(p_sides) > 2 or len(g_sides) > 2:   # chains: the first side and the last
        return values_equal(p_sides[0], g_sides[0]) and nodes_match(parse_answer(p_sides[-1]), parse_answer(g_sides[-1]))
    if values_equal(p_sides[0], g_sides[0]) and nodes_match(parse_answer(p_sides[1]), parse_answer(g_sides[1])):
        return True
    if is_label(p_sides[0]) and is_label(g_sides[0]) and same_label(p_sides[0], g_sides[0]):
        return nodes_match(parse_answer(p_sides[1]), parse_answer(g_sides[1]))
    return proportional(f"({p_sides[0]})-({p_sides[1]})", f"({g_sides[0]})-({g_sides[1]})")



def _unordered_match(left: list, right: list) -> bool:
    """Every member of each side equals a member of the other (duplicates collapse, as in sets)."""
    return all(any(nodes_match(a, b) for b in right) for a in left) and all(
        any(nodes_match(a, b) for a in left) for b in right)


def _items(node: tuple) -> Optional[list]:
    return node[1] if node[0] in ("list", "tuple") else None


def nodes_match(predicted: tuple, expected: tuple) -> bool:
    """Equivalence of two answer trees; the expected answer's form decides (see the module docstring)."""
    if predicted == expected:
        return True
    if predicted[0] == "member":
        return nodes_match(predicted[2], expected)
    if expected[0] == "member":
        return nodes_match(predicted, expected[2])
    decimal = _decimal_comma_pair(predicted, expected)
    if decimal:
        return nodes_match(*decimal)
    if _is_equation(predicted) and _is_equation(expected):
        return _equations_match(predicted, expected)
    stripped_p, stripped_g = _strip_label(predicted, expected, True), _strip_label(expected, predicted, False)
    if (stripped_p, stripped_g) != (predicted, expected):
        return nodes_match(stripped_p, stripped_g)
    if predicted[0] == "relation" or expected[0] == "relation" or "union" in (predicted[0], expected[0]):
        return _as_sets_match(predicted, expected)
    if "matrix" in (predicted[0], expected[0]):
        return _matrices_match(predicted, expected)
    g_items, p_items = _items(expected), _items(predicted)
    if predicted[0] == "list" and expected[0] not in ("list", "tuple") and all(
            nodes_match(item, expected) for item in predicted[1]):
        return True   # the same answer in two forms: 15\\frac{39}{40}, or \\frac{639}{40}
    if expected[0] == "list":
        return p_items is not None and _unordered_match(p_items, g_items)
    if expected[0] == "tuple":
        if p_items is None or len(p_items) != len(g_items):
            return False
        if predicted[0] == "tuple" and predicted[2] != expected[2]:
            return False
        return all(nodes_match(a, b) for a, b in zip(p_items, g_items))
    if predicted[0] == "value" and expected[0] == "value":
        return values_equal(predicted[1], expected[1])
    return False


def _decimal_comma_pair(predicted: tuple, expected: tuple) -> Optional[tuple]:
    """``3,75`` against the single number ``3.75``: the comma was a decimal comma."""
    for a, b, flip in ((predicted, expected, False), (expected, predicted, True)):
        if a[0] == "list" and len(a[1]) == 2 and b[0] == "value" and all(n[0] == "value" for n in a[1]):
            joined = decimal_comma(f"{a[1][0][1]},{a[1][1][1]}")
            if joined and as_number(b[1].rstrip("%")) is not None:
                return (b, ("value", joined)) if flip else (("value", joined), b)
    return None


def _as_sets_match(predicted: tuple, expected: tuple) -> bool:
    if predicted[0] == expected[0] == "relation" and predicted[2] == expected[2] and all(
            values_equal(a, b) for a, b in zip(predicted[1], expected[1])) and len(predicted[1]) == len(expected[1]):
        return True
    a, b = as_set(predicted), as_set(expected)
    if a is not None and b is not None:
        return sets_equal(a, b)
    if predicted[0] == expected[0] == "union":
        return _unordered_match(predicted[1], expected[1])
    if predicted[0] == expected[0] == "relation":
        return relations_match(predicted, expected)
    return False



def _matrices_match(predicted: tuple, expected: tuple) -> bool:
    def cells(node: tuple) -> Optional[tuple]:
        if node[0] == "matrix":
            return [c for row in node[1] for c in row], [len(row) for row in node[1]]
        if node[0] == "tuple" and node[2] == "()" and all(n[0] == "value" for n in node[1]):
            return [n[1] for n in node[1]], None
        return None
    a, b = cells(predicted), cells(expected)
    if a is None or b is None:   # matrix arithmetic, or a matrix against a value: compare what sympy computes
        sources = [node[2] if node[0] == "matrix" else node[1] for node in (predicted, expected) if node[0] in ("matrix", "value")]
        values = [latex_value(text) for text in sources]
        return len(values) == 2 and None not in values and sympy_equal(values[0], values[1])
    if len(a[0]) != len(b[0]):
        return False
    if a[1] is not None and b[1] is not None and a[1] != b[1] and not (set(a[1]) == {1} or set(b[1]) == {1}):
        return False
    return all(nodes_match(parse_answer(x), parse_answer(y)) for x, y in zip(a[0], b[0]))


def _gold_choice(expected: str) -> tuple[Optional[str], Optional[str]]:
    """``(letter, value)`` of a multiple-choice gold: ``B``, ``(B)``, ``\\text{(B)}``, ``\\textbf{(D) }15``."""
    normalized = normalize_answer(expected)
    if re.fullmatch(r"\(?([A-J])\)?", normalized):
        return normalized.strip("()"), None
    match = re.fullmatch(r"(?:\\text\{)?\(([A-J])\)\}?(.+)", normalized)
    return (match.group(1), match.group(2)) if match else (None, None)


def answers_match(predicted: Optional[str], expected: Any) -> bool:
    """Whether ``predicted`` (an extracted answer) is equivalent to ``expected`` (the gold answer)."""
    if predicted is None or expected is None:
        return False
    p_text, g_text = normalize_answer(predicted), normalize_answer(str(expected))
    if not p_text or not g_text:
        return False
    if p_text == g_text:
        return True
    letter, value = _gold_choice(str(expected))
    if letter:
        mine = choice_letter(predicted)
        if mine or value is None:
            return mine == letter
        return nodes_match(parse_answer(p_text), parse_answer(value))   # (D) 15: the value itself counts too
    return nodes_match(parse_answer(p_text), parse_answer(g_text))


# ---------------------------------------------------------------- the program
class _Timeout(BaseException):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def grade_pair(predicted: Optional[str], expected: Any, timeout: float) -> str:
    """``1``/``0`` for equal/not, ``T`` when ``timeout`` seconds ran out, ``E`` on a grader error."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return "1" if answers_match(predicted, expected) else "0"
    except _Timeout:
        return "T"
    except ImportError:
        raise  # no sympy: every pair would fail, so stop the batch
    except (RecursionError, MemoryError):
        return "E"
    except Exception:  # noqa: BLE001 - one bad pair must not stop the batch
        return "E"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _answer(request: dict) -> None:
    """Verdicts, one line per pair; past the request's ``budget`` seconds, ``<nonce> yield`` hands the rest back."""
    started = time.monotonic()
    budget = float(request.get("budget") or 0)
    for index, (predicted, expected) in enumerate(request["pairs"]):
        if budget and time.monotonic() - started > budget:
            sys.stdout.write(f"{request['nonce']} yield\n")
            break
        verdict = grade_pair(predicted, expected, float(request["timeout"]))
        sys.stdout.write(f"{request['nonce']} {index} {verdict}\n")
        sys.stdout.flush()
    sys.stdout.flush()


def main() -> None:
    sys.setrecursionlimit(5000)
    if "--serve" in sys.argv:
        for line in sys.stdin:
            if line.strip():
                request = json.loads(line)
                _answer(request)
                sys.stdout.write(f"{request['nonce']} done\n")
                sys.stdout.flush()
        return
    _answer(json.loads(sys.stdin.read()))


if __name__ == "__main__":
    main()
