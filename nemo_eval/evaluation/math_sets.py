"""Sets of real numbers an answer describes: intervals, unions, inequalities, so forms compare as sets.

Runs inside the sandbox (inlined into the grading program after ``math_values``).
``y \\geq 3``, ``[3, \\infty)`` and ``3 \\le y`` are one set; ``-1 \\le x \\le 4`` is ``x \\in [-1, 4]``;
``1 \\le |z| \\le 3/2`` is solved by sympy into ``[-3/2, -1] \\cup [1, 3/2]``. Inequalities in several
variables compare as relations: the same operator after moving everything to one side, the sides
differing by a positive factor.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from nemo_eval.evaluation.math_latex import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_structure import *  # noqa: F401,F403  (inlined in the sandbox program)
from nemo_eval.evaluation.math_values import *  # noqa: F401,F403  (inlined in the sandbox program)

FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def as_set(node: tuple) -> Any:
    """The set of real numbers a node describes (interval, union, inequality), or None."""
    import sympy

    kind = node[0]
    if kind == "member":
        return as_set(node[2])
    if kind == "union":
        parts = [as_set(part) for part in node[1]]
        return None if any(p is None for p in parts) else sympy.Union(*parts)
    if kind == "tuple" and len(node[1]) == 2 and all(n[0] == "value" for n in node[1]):
        low, high = (latex_value(n[1]) for n in node[1])
        if low is None or high is None or not (low.is_extended_real and high.is_extended_real):
            return None
        return sympy.Interval(low, high, node[2][0] == "(", node[2][1] == ")")
    if kind == "list" and any(n[0] == "relation" for n in node[1]):   # x < -2 or x > 3
        parts = [as_set(part) for part in node[1]]
        return None if any(p is None for p in parts) else sympy.Union(*parts)
    if kind == "list" and all(n[0] == "value" for n in node[1]):
        values = [latex_value(n[1]) for n in node[1]]
        return None if any(v is None or not v.is_real for v in values) else sympy.FiniteSet(*values)
    if kind == "value" and node[1] in ("\\{\\}", "{}"):
        return sympy.EmptySet
    if kind == "relation" and "=" not in node[2] and "~=" not in node[2]:
        return _relation_set(node[1], node[2])
    return None


def _relation_set(sides: list, operators: list) -> Any:
    import sympy

    values = [latex_value(side) for side in sides]
    constant = [v is not None and v.is_number and v.is_real is not False for v in values]
    if len(sides) == 3 and constant[0] and constant[2] and is_variable(sides[1]):   # a < x <= b, 0 < f(x) < 1
        low, high, (op_low, op_high) = values[0], values[2], operators
        if op_low in (">", ">=") and op_high in (">", ">="):
            low, high, op_low, op_high = high, low, FLIPPED[op_high], FLIPPED[op_low]
        if op_low in ("<", "<=") and op_high in ("<", "<="):
            return sympy.Interval(low, high, op_low == "<", op_high == "<")
        return None
    if len(sides) == 2 and (is_variable(sides[0]) or is_variable(sides[1])) and (constant[0] or constant[1]):
        variable_first = not constant[0]
        bound = values[1] if variable_first else values[0]
        operator = operators[0] if variable_first else FLIPPED.get(operators[0], operators[0])
        return {"<": sympy.Interval.open(-sympy.oo, bound), "<=": sympy.Interval(-sympy.oo, bound),
                ">": sympy.Interval.open(bound, sympy.oo), ">=": sympy.Interval(bound, sympy.oo),
                "!=": sympy.Union(sympy.Interval.open(-sympy.oo, bound), sympy.Interval.open(bound, sympy.oo))
                }.get(operator)
    if any(v is None for v in values):
        return None
    symbols = set().union(*(v.free_symbols for v in values))
    if len(symbols) != 1:
        return None
    symbol = symbols.pop()
    relations = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge, "!=": sympy.Ne}
    result = sympy.Reals
    for left, operator, right in zip(values, operators, values[1:]):
        result = sympy.Intersection(result, sympy.solveset(relations[operator](left, right), symbol, sympy.Reals))
    return result


def is_variable(text: str) -> bool:
    """A lone variable (``x``, ``a_1``, ``f(x)``): its inequality is an interval without solving."""
    return is_label(text) and re.fullmatch(r"[A-Za-z](?:_\w+)?'?(?:\([A-Za-z]\))?|\\[A-Za-z]+", text) is not None



def sets_equal(a: Any, b: Any) -> bool:
    import sympy

    if a == b:
        return True
    try:
        return bool(sympy.Complement(a, b) == sympy.EmptySet and sympy.Complement(b, a) == sympy.EmptySet)
    except (TypeError, ValueError, ArithmeticError):
        return False



def relations_match(predicted: tuple, expected: tuple) -> bool:
    """Inequalities in several variables: the same operator, sides moved to one side, positive factor."""
    def canonical(node: tuple) -> Optional[tuple]:
        if len(node[1]) != 2:
            return None
        left, right = node[1]
        operator = node[2][0]
        if operator in (">", ">="):
            left, right, operator = right, left, FLIPPED[operator]
        return f"({left})-({right})", operator
    a, b = canonical(predicted), canonical(expected)
    if a is None or b is None or a[1] != b[1]:
        return False
    x, y = latex_value(a[0]), latex_value(b[0])
    if x is None or y is None:
        return False
    if a[1] in ("!=",):
        return proportional(a[0], b[0])
    import sympy

    ratio = sympy.simplify(x / y) if y != 0 else None
    return bool(ratio is not None and ratio.is_number and ratio.is_positive)
