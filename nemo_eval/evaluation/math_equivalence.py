"""Is a predicted math answer equivalent to the expected one? Runs inside the sandbox.

This file, with ``math_normalize.py`` inlined where it is imported, is the program the math grader
sends to the sandbox: it reads ``{"nonce", "timeout", "pairs": [[predicted, expected], ...]}`` on
stdin and prints ``<nonce> <index> <verdict>`` per pair as soon as it is decided (``1`` equal,
``0`` not, ``T`` timed out, ``E`` grader error), so a batch killed by the sandbox's hard timeout
still reports every pair before the one that hung. Sympy is imported only when a pair needs it.

Comparison, after :func:`normalize_answer` on both sides:
1. equal strings; multiple-choice letters when the expected answer is one;
2. structure: matrices element-wise, tuples and intervals in order (same brackets), sets and bare
   lists in any order, ``x = 3`` against ``3``, equations as equations, ``\\pm`` as two answers;
3. each pair of values: exact fractions (rel. tolerance 1e-4), else sympy: identical, then
   ``simplify(a - b) == 0``, then numerically (rel. tolerance 1e-4; free symbols at random points);
4. a percent on one side only: ``50%`` also matches ``0.5``.

LaTeX becomes a Python expression by string rewriting (a lone ``e`` is Euler's number, a lone ``i``
the imaginary unit), and only whitelisted tokens (numbers, operators, known function names and
short symbol names) ever reach sympy's parser.
"""

from __future__ import annotations

import json
import keyword
import random
import re
import signal
import sys
from typing import Any, Optional

from nemo_eval.evaluation.math_normalize import *  # noqa: F401,F403  (inlined in the sandbox program)

REL_TOL = 1e-4
FUNCTIONS = {"sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc",
             "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
             "ln": "log", "log": "log", "exp": "exp"}
CONSTANTS = {"pi": "pi", "infty": "oo", "infinity": "oo"}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "phi", "omega", "tau", "sigma", "rho"}
SYMPY_NAMES = {"sqrt", "Abs", "factorial", "binomial", "pi", "oo", "E", "I", "log", "exp", "asin", "acos", "atan",
               *FUNCTIONS.values()}
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)?)|(\*\*|[-+*/(),]))")


class _Unparsable(Exception):
    pass


def _group(text: str, start: int) -> tuple[str, int]:
    """The argument at ``start``: a braced group (converted), else one character/number/command."""
    while start < len(text) and text[start] == " ":
        start += 1
    if start >= len(text):
        raise _Unparsable("missing argument")
    if text[start] == "{":
        end = matching_brace(text, start)
        if end < 0:
            raise _Unparsable("unbalanced braces")
        return "(" + latex_to_expression(text[start + 1:end - 1]) + ")", end
    if text[start] == "\\":
        match = re.match(r"\\[A-Za-z]+", text[start:])
        if match:
            return latex_to_expression(match.group(0)), start + match.end()
    match = re.match(r"\d+(?:\.\d+)?|.", text[start:])
    return latex_to_expression(match.group(0)), start + match.end()


def latex_to_expression(text: str) -> str:
    """A Python/sympy expression for a LaTeX (or plain) math expression; raises _Unparsable."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            match = re.match(r"\\([A-Za-z]+)", text[index:])
            if not match:
                raise _Unparsable(text[index:index + 2])
            name, index = match.group(1), index + match.end()
            if name == "frac":
                numerator, index = _group(text, index)
                denominator, index = _group(text, index)
                out.append(f"({numerator}/{denominator})")
            elif name == "binom":
                top, index = _group(text, index)
                bottom, index = _group(text, index)
                out.append(f"binomial({top},{bottom})")
            elif name == "sqrt":
                root = re.match(r"\s*\[([^\]]*)\]", text[index:])
                if root:
                    index += root.end()
                argument, index = _group(text, index)
                out.append(f"({argument})**(1/({latex_to_expression(root.group(1))}))" if root else f"sqrt({argument})")
            elif name in FUNCTIONS:
                base = None
                if name == "log" and text.startswith("_", index):
                    base, index = _group(text, index + 1)
                power = None
                if text.startswith("^", index):
                    power, index = _group(text, index + 1)
                argument, index = _group(text, index) if not text.startswith("(", index) else _parenthesized(text, index)
                call = f"{FUNCTIONS[name]}({argument}{',' + base if base else ''})"
                out.append(f"({call})**({power})" if power else call)
            elif name in CONSTANTS or name in GREEK:
                out.append(f" {CONSTANTS.get(name, name)} ")
            else:
                raise _Unparsable("\\" + name)
        elif char == "^":
            power, index = _group(text, index + 1)
            out.append(f"**({power})")
        elif char == "{":
            argument, index = _group(text, index)
            out.append(argument)
        elif char == "!":
            out.append("!")
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _parenthesized(text: str, start: int) -> tuple[str, int]:
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return "(" + latex_to_expression(text[start + 1:index]) + ")", index + 1
    raise _Unparsable("unbalanced parentheses")


def _python_expression(text: str) -> str:
    """The whitelisted expression sympy parses, or raise _Unparsable."""
    expression = latex_to_expression(text)
    expression = re.sub(r"\|([^|]*)\|", r"Abs(\1)", expression)
    expression = re.sub(r"(?<![\w.])e(?![\w(])", "E", expression)  # Euler's number
    expression = re.sub(r"(?<![\w.])i(?![\w(])", "I", expression)  # the imaginary unit
    for _ in range(3):
        expression = re.sub(r"(\d+|[A-Za-z]\w*|\([^()]*\))\s*!", r"factorial(\1)", expression)
    position = 0
    for match in _TOKEN.finditer(expression):
        if match.start() != position:
            break
        position = match.end()
        name = match.group(2)
        if name and (keyword.iskeyword(name) or "__" in name or (len(name) > 3 and name not in SYMPY_NAMES
                                                                   and name not in GREEK)):
            raise _Unparsable(name)
    if expression[position:].strip():
        raise _Unparsable(expression[position:position + 10])
    return expression


MAX_DIGITS = 10000  # a power with more digits than this is not a real answer (and would hang in C)


def _digits(expression: Any) -> float:
    """Estimated log10 of the magnitude of an unevaluated expression, without computing big powers."""
    import math

    if expression.is_Rational or expression.is_Float:
        return math.log10(abs(float(expression))) if expression != 0 and abs(expression) < 10 ** 300 else (
            0.0 if expression == 0 else float(len(str(abs(int(expression))))))
    if expression.is_Pow:
        base, exponent = expression.args
        exponent_digits = _digits(exponent)
        if exponent_digits > 6:
            return math.inf
        try:
            power = abs(float(exponent.evalf(15)))
        except (TypeError, ValueError):
            return 0.0
        return power * max(_digits(base), 0.0)
    children = [_digits(arg) for arg in expression.args]
    if not children:
        return 0.0
    return sum(max(c, 0.0) for c in children) if expression.is_Mul else max(children) + 1


def _too_big(expression: Any) -> bool:
    """Whether an unevaluated expression holds a number too large to compute (towers, huge exponents)."""
    try:
        return _digits(expression) > MAX_DIGITS
    except (TypeError, ValueError, OverflowError, RecursionError):
        return True


def _sympy_value(text: str) -> Any:
    import sympy
    from sympy.parsing.sympy_parser import (convert_xor, implicit_multiplication, parse_expr,
                                            standard_transformations)

    names = {name: getattr(sympy, name) for name in SYMPY_NAMES}
    names.update(Integer=sympy.Integer, Float=sympy.Float, Rational=sympy.Rational, Symbol=sympy.Symbol,
                 Add=sympy.Add, Mul=sympy.Mul, Pow=sympy.Pow)
    names["__builtins__"] = {}
    transformations = standard_transformations + (implicit_multiplication, convert_xor)
    expression = _python_expression(text)
    if _too_big(parse_expr(expression, global_dict=dict(names), transformations=transformations, evaluate=False)):
        raise _Unparsable("too large to evaluate")
    return parse_expr(expression, global_dict=names, transformations=transformations)


def _numbers_near(a: complex, b: complex) -> bool:
    import cmath

    if not (cmath.isfinite(a) and cmath.isfinite(b)):
        return False
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + 1e-12


def _exact_only(a: Any, b: Any) -> bool:
    """Rationals (integers, fractions) are equal exactly or not at all: 10001 is not 10000."""
    return bool(a.is_Rational and b.is_Rational)


def sympy_equal(left: str, right: str) -> bool:
    """Exactly, then symbolically, then numerically equal (False when either side does not parse)."""
    import sympy

    try:
        a, b = _sympy_value(left), _sympy_value(right)
    except _Timeout:
        raise
    except Exception:  # noqa: BLE001 - sympy's parser raises many types (TokenError, SympifyError, ...)
        return False
    if not isinstance(a, sympy.Basic) or not isinstance(b, sympy.Basic):
        return False
    if a == b:
        return True
    if _exact_only(a, b):
        return False
    if a.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or b.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return False
    try:
        if sympy.simplify(a - b) == 0:
            return True
        symbols = sorted(a.free_symbols | b.free_symbols, key=str)
        generator = random.Random(0)
        for _ in range(3 if symbols else 1):
            point = {s: sympy.Float(generator.uniform(0.5, 2.5)) for s in symbols}
            x, y = complex(a.subs(point).evalf(30)), complex(b.subs(point).evalf(30))
            if not _numbers_near(x, y):
                return False
        return True
    except _Timeout:
        raise
    except Exception:  # noqa: BLE001 - simplify/evalf fail in many ways on odd input: not equal
        return False


def proportional(left: str, right: str) -> bool:
    """Whether two expressions differ by a non-zero constant factor (equations ``2y=4x+2`` and ``y=2x+1``)."""
    import sympy

    try:
        a, b = _sympy_value(left), _sympy_value(right)
        if b == 0 or not (a.free_symbols or b.free_symbols):
            return False
        ratio = sympy.simplify(a / b)
        return bool(ratio.is_number and ratio != 0 and ratio.is_finite)
    except _Timeout:
        raise
    except Exception:  # noqa: BLE001
        return False


def values_match(predicted: str, expected: str) -> bool:
    if predicted == expected:
        return True
    a, b = as_number(predicted), as_number(expected)
    if a is not None and b is not None:
        written_as_decimal = any(re.search(r"\d[.eE]|^\.", text) for text in (predicted, expected))
        return numbers_close(a, b, REL_TOL) if written_as_decimal else a == b
    if re.fullmatch(r"[A-Za-z][A-Za-z ]*", predicted) and re.fullmatch(r"[A-Za-z][A-Za-z ]*", expected):
        return predicted.lower() == expected.lower()  # words: Yes / yes
    return sympy_equal(predicted, expected)


_VARIABLE = re.compile(r"^[A-Za-z](?:_\w+)?(?:\([A-Za-z]\))?$")


def _unordered_match(left: list, right: list) -> bool:
    if len(left) != len(right):
        return False
    remaining = list(right)
    for item in left:
        for position, candidate in enumerate(remaining):
            if structures_match(item, candidate):
                del remaining[position]
                break
        else:
            return False
    return True


def structures_match(predicted: str, expected: str) -> bool:
    """Equivalence of two normalised answers (see the module docstring, step 2)."""
    if predicted == expected:
        return True
    membership = re.compile(r"^[A-Za-z](?:_\w+)?\s*\\in(?![A-Za-z])\s*")
    if membership.match(predicted) or membership.match(expected):  # x \in [1,2] -> [1,2]
        return structures_match(membership.sub("", predicted), membership.sub("", expected))
    kind_p, parts_p, brackets_p = split_structure(predicted)
    kind_e, parts_e, brackets_e = split_structure(expected)
    if kind_e == "equation" and kind_p != "equation" and _VARIABLE.match(parts_e[0]):
        return structures_match(predicted, parts_e[1])
    if kind_p == "equation" and kind_e != "equation" and _VARIABLE.match(parts_p[0]):
        return structures_match(parts_p[1], expected)
    if kind_p == kind_e == "equation":
        if values_match(parts_p[0], parts_e[0]) and values_match(parts_p[1], parts_e[1]):
            return True
        return proportional(f"({parts_p[0]})-({parts_p[1]})", f"({parts_e[0]})-({parts_e[1]})")
    if "matrix" in (kind_p, kind_e):
        flat_p = [c for row in parts_p for c in row] if kind_p == "matrix" else parts_p
        flat_e = [c for row in parts_e for c in row] if kind_e == "matrix" else parts_e
        same_shape = kind_p == kind_e and [len(r) for r in parts_p] == [len(r) for r in parts_e]
        vector = kind_p != kind_e and kind_p in ("matrix", "sequence") and kind_e in ("matrix", "sequence")
        return (same_shape or vector) and len(flat_p) == len(flat_e) and all(
            structures_match(a, b) for a, b in zip(flat_p, flat_e))
    if kind_p == kind_e == "sequence" or {kind_p, kind_e} == {"sequence", "list"}:
        if kind_p == kind_e and brackets_p != brackets_e:
            return False
        if {kind_p, kind_e} == {"sequence", "list"} and "()" not in (brackets_p, brackets_e):
            return False
        return len(parts_p) == len(parts_e) and all(structures_match(a, b) for a, b in zip(parts_p, parts_e))
    if kind_p in ("set", "list") and kind_e in ("set", "list") or kind_p == kind_e == "union":
        return _unordered_match(parts_p, parts_e)
    if kind_p == kind_e == "value":
        return values_match(predicted, expected)
    return False


def answers_match(predicted: Optional[str], expected: Any) -> bool:
    """Whether ``predicted`` (raw extracted text) is equivalent to ``expected`` (the gold answer)."""
    if predicted is None or expected is None:
        return False
    gold = str(expected)
    letter = choice_letter(gold)
    normalized_gold = normalize_answer(gold)
    if letter and re.fullmatch(r"\(?[A-J]\)?", normalized_gold):
        return choice_letter(predicted) == letter or normalize_answer(predicted) == normalized_gold
    normalized = normalize_answer(predicted)
    if structures_match(normalized, normalized_gold):
        return True
    if had_percent(predicted) != had_percent(gold):
        scaled = (as_number(normalized), as_number(normalized_gold))
        if None not in scaled:
            a, b = scaled
            return numbers_close(a / 100, b) if had_percent(predicted) else numbers_close(a, b / 100)
    return False


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
        raise  # no sympy in the sandbox: every pair would fail, so stop the batch
    except Exception:  # noqa: BLE001 - one bad pair must not stop the batch
        return "E"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    request = json.loads(sys.stdin.read())
    sys.setrecursionlimit(5000)
    for index, (predicted, expected) in enumerate(request["pairs"]):
        verdict = grade_pair(predicted, expected, float(request["timeout"]))
        sys.stdout.write(f"{request['nonce']} {index} {verdict}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
