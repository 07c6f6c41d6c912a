"""Whether two single answer values are equal: exact numbers, decimals as written, words, then sympy.

Runs inside the sandbox (inlined into the grading program after ``math_latex``).

- Plain numbers (integers, decimals, fractions, mixed numbers, ``3,75``) are exact fractions. Two
  exact forms must be equal. A decimal against an exact value matches when it is that value rounded
  or cut to the decimals written and has at least three significant digits (``0.333`` is ``1/3``,
  ``0.33`` is not); when the exact value has no more decimals than written, only equality counts
  (``2000.1`` is never ``2000``, ``4999.93`` never ``5000``). Two decimals must be equal.
- Words (``\\text{Evelyn}``, ``odd``) compare case-insensitively; words never meet sympy.
- Anything else is parsed (:func:`parse_latex`) and compared: structurally equal, or equal at 40
  significant digits (numbers), or at three random rational points (expressions with variables),
  or ``simplify(a - b) == 0`` when points cannot be evaluated. Infinities only equal themselves.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Any, Iterator, Optional

from nemo_eval.evaluation.math_latex import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_normalize import *  # noqa: F401,F403  (inlined in the sandbox program)

MIN_SIGNIFICANT_DIGITS = 3
_TEXT_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_MATH_NAMES = {"sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
               "log", "exp", "infty", "inf", "infinity", "max", "min", "gcd", "lcm", "abs", "floor", "ceil", "det", "frac"}


def _is_text(text: str) -> bool:
    return any(word.lower() not in _MATH_NAMES for word in _TEXT_WORD.findall(text))


def _number_with_comma(text: str) -> Optional[Fraction]:
    value = as_number(text)
    if value is None and decimal_comma(text):
        value = as_number(decimal_comma(text))
    return value


def _decimal_matches(decimal_text: str, exact: Any) -> bool:
    """Whether the written decimal is ``exact`` rounded or cut to its decimals (3+ significant digits)."""
    places = written_decimals(decimal_text)
    if places is None:
        return False
    decimal = Fraction(decimal_text)
    if isinstance(exact, Fraction):
        if (exact * 10 ** places).denominator == 1:
            return decimal == exact   # the exact value has no more decimals than written: no rounding to forgive
        value = exact
    else:
        value = exact
    if significant_digits(decimal_text) < MIN_SIGNIFICANT_DIGITS:
        return False
    unit = Fraction(1, 10 ** places)
    difference = abs(value - decimal) if isinstance(value, Fraction) else abs(_fraction_of(value) - decimal)
    truncated = (abs(_fraction_of(value)) * 10 ** places) // 1 / Fraction(10 ** places)
    return difference <= unit / 2 or abs(decimal) == truncated


def _fraction_of(value: Any) -> Fraction:
    if isinstance(value, Fraction):
        return value
    import sympy

    return Fraction(str(sympy.N(value, 50)))


def _numbers_equal(p_text: str, g_text: str, p: Fraction, g: Fraction) -> bool:
    if p == g:
        return True
    p_places, g_places = written_decimals(p_text), written_decimals(g_text)
    if p_places is not None and g_places is None:
        return _decimal_matches(p_text, g)
    if g_places is not None and p_places is None:
        return _decimal_matches(g_text, p)
    return False


_BASE = re.compile(r"([0-9A-Za-z]+)_(\d+)")


def _base_digits_equal(predicted: str, expected: str) -> Optional[bool]:
    """A gold written in a base (``1011_2``) is matched by its digits (``1011``, ``1011_2``), not by its value.

    None when the gold has no base subscript.
    """
    gold = _BASE.fullmatch(expected)
    if not gold or gold.group(2) == "10":
        return None
    mine = _BASE.fullmatch(predicted)
    if mine:
        return mine.group(2) == gold.group(2) and mine.group(1).lower() == gold.group(1).lower()
    return predicted.lower() == gold.group(1).lower()


def values_equal(predicted: str, expected: str) -> bool:
    """Equality of two single values (normalised strings): numbers, text, then sympy."""
    if predicted == expected:
        return True
    in_base = _base_digits_equal(predicted, expected)
    if in_base is not None:
        return in_base
    if is_percent(predicted) != is_percent(expected):
        bare_p, bare_g = predicted.rstrip("%"), expected.rstrip("%")
        if values_equal(bare_p, bare_g):
            return True
        scaled = f"({bare_p})/100" if is_percent(predicted) else bare_p
        target = bare_g if is_percent(predicted) else f"({bare_g})/100"
        return _sympy_values_equal(scaled, target)
    predicted, expected = predicted.rstrip("%"), expected.rstrip("%")
    p, g = _number_with_comma(predicted), _number_with_comma(expected)
    if p is not None and g is not None:
        return _numbers_equal(predicted, expected, p, g)
    if _is_text(predicted) or _is_text(expected):
        return _words(predicted) == _words(expected)
    return _sympy_values_equal(predicted, expected)


def _words(text: str) -> str:
    return re.sub(r"\\text\{([^{}]*)\}", r"\1", text).replace(" ", "").lower()


def _sympy_values_equal(predicted: str, expected: str) -> bool:
    a, b = latex_value(predicted), latex_value(expected)
    if a is None or b is None:
        return False
    return sympy_equal(a, b, predicted, expected)


def sympy_equal(a: Any, b: Any, a_text: str = "", b_text: str = "") -> bool:
    """Whether two sympy values are equal (see the module docstring, step 3)."""
    import sympy

    if getattr(a, "is_Matrix", False) or getattr(b, "is_Matrix", False):
        return (getattr(a, "is_Matrix", False) and getattr(b, "is_Matrix", False) and a.shape == b.shape
                and all(sympy_equal(x, y) for x, y in zip(a, b)))
    if not isinstance(a, sympy.Basic) or not isinstance(b, sympy.Basic):
        return False
    if a == b:
        return True
    for decimal_text, exact in ((a_text, b), (b_text, a)):
        if written_decimals(decimal_text) is not None and exact.is_number and exact.is_finite is not False:
            other_text = b_text if decimal_text == a_text else a_text
            if written_decimals(other_text) is None:
                return exact.is_real is not False and _decimal_matches(decimal_text, exact)
    if a.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or b.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return False
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        difference = a - b
        if difference.is_Rational:   # exact after sympy's own evaluation: 2^{100} is never 2^{100}-1
            return difference == 0
        return close_enough(a, b)
    return _equal_at_points(a, b, symbols)


def close_enough(a: Any, b: Any, digits: int = 40) -> bool:
    import sympy

    try:
        x, y = sympy.N(a, digits), sympy.N(b, digits)
        if not (x.is_number and y.is_number):
            return sympy.simplify(a - b) == 0
        difference = abs(sympy.N(x - y, digits))
        scale = max(abs(x), abs(y), sympy.Integer(1))
        return bool(difference <= scale * sympy.Float(10) ** (-(digits - 10)))
    except (TypeError, ValueError, ArithmeticError):
        return False


def values_at_points(a: Any, b: Any, seed: int, tries: int = 12) -> Iterator[tuple[Any, Any]]:
    """``(a, b)`` evaluated at 40 digits at random rational points of their variables (points where either
    is undefined are skipped)."""
    import sympy

    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    generator = random.Random(seed)
    for _ in range(tries):
        point = {s: sympy.Rational(generator.randint(11, 97), generator.randint(7, 31)) for s in symbols}
        try:
            x, y = sympy.N(a.subs(point), 40), sympy.N(b.subs(point), 40)
        except (TypeError, ValueError, ArithmeticError):
            continue
        if x.is_number and y.is_number and not (x.has(sympy.nan, sympy.zoo) or y.has(sympy.nan, sympy.zoo)):
            yield x, y


def _equal_at_points(a: Any, b: Any, symbols: list) -> bool:
    import sympy

    checked = 0
    for x, y in values_at_points(a, b, seed=7):
        if not close_enough(x, y, 30):
            return False
        checked += 1
        if checked == 3:
            return True
    try:
        return sympy.simplify(a - b) == 0
    except (TypeError, ValueError, ArithmeticError):
        return False


def proportional(left: str, right: str) -> bool:
    """Whether two expressions differ by a non-zero constant factor (equations ``2y=4x+2`` and ``y=2x+1``)."""
    a, b = latex_value(left), latex_value(right)
    if a is None or b is None or b == 0 or not (a.free_symbols or b.free_symbols):
        return False
    ratios = []
    for x, y in values_at_points(a, b, seed=11, tries=8):
        if y != 0:
            ratios.append(x / y)
        if len(ratios) == 3:
            break
    return len(ratios) == 3 and ratios[0] != 0 and all(close_enough(r, ratios[0], 30) for r in ratios)
