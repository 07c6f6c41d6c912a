"""The shape of a normalised math answer: lists, sets, tuples/intervals, unions, relations, matrices.

Standard library only (inlined into the sandbox grading program after ``math_normalize``).
:func:`parse_answer` turns a string from :func:`normalize_answer` into a small tree of tuples:

- ``("value", text)``: one expression;
- ``("list", [nodes])``: answers in any order: ``1, 2``, ``\\{1,2\\}``, ``{1,2}``, ``1 \\pm \\sqrt2``,
  ``-12;-11`` (semicolons), ``p=5,q=2;p=7,q=2`` (groups of assignments become tuples);
- ``("tuple", [nodes], brackets)``: ``(1,2)``, ``[0,1)`` (a tuple or an interval; the comparison decides);
- ``("union", [nodes])``: parts joined by ``\\cup``;
- ``("relation", [sides], [operators])``: ``x=3``, ``a=b=c``, ``-1<=x<=4``, ``x!=3``; an approximation
  after an exact value is dropped (``x=1/3~=0.33`` -> ``x=1/3``);
- ``("member", label, node)``: ``x\\in[1,2]``;
- ``("matrix", [[cells]], source)``: ``\\begin{pmatrix}..``, ``\\begin{array}..``.

:func:`is_label` tells whether the left side of ``lhs = rhs`` only names the answer (``x``, ``(a,b)``,
``A:B``, ``f(x)``, ``|AB|``, ``\\frac{NO}{BO}``), so ``(a,b)=(4,1)`` can match ``(4,1)``.
"""

from __future__ import annotations

import re

from nemo_eval.evaluation.braces import matching_brace  # inlined before this module in the sandbox program

RELATION_OPERATORS = ("<=", ">=", "!=", "~=", "=", "<", ">")
_NAME = r"(?:\\[A-Za-z]+|[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?'?(?:\([A-Za-z]\))?"
_LABEL = re.compile(rf"{_NAME}|\({_NAME}(?:,{_NAME})+\)|{_NAME}(?::{_NAME})+|\|{_NAME}\||\\frac\{{{_NAME}\}}\{{{_NAME}\}}")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?((?:(?!\\begin\{).)*)\\end\{\1\}", re.S)


def split_top_level(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside (), [], {} and ``\\{ \\}``."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and text[index + 1:index + 2] in ("{", "}"):
            depth += 1 if text[index + 1] == "{" else -1
            index += 2
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, index):
            parts.append(text[start:index])
            start = index + len(separator)
            index = start
            continue
        index += 1
    parts.append(text[start:])
    return parts


def _closes_at_end(text: str) -> bool:
    """Whether the bracket opened at 0 closes at the last character (not earlier)."""
    return matching_brace(text, 0, "([{", ")]}") == len(text)


def _split_relation(text: str) -> tuple[list[str], list[str]]:
    """Sides and operators of a top-level relation chain (``a<=b<c``)."""
    sides, operators, depth, start, index = [], [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            operator = next((op for op in RELATION_OPERATORS if text.startswith(op, index)), None)
            if operator and not (operator == "=" and text[index - 1:index] in "<>!~" and index > 0):
                sides.append(text[start:index])
                operators.append(operator)
                index += len(operator)
                start = index
                continue
        index += 1
    sides.append(text[start:])
    return sides, operators


def is_label(text: str) -> bool:
    """Whether ``text`` only names the answer (``x``, ``(p,q)``, ``A:B``, ``f(x)``, ``|AB|``)."""
    return bool(_LABEL.fullmatch(text)) and text not in ("e", "i")


def _expand_plus_minus(text: str) -> list[str]:
    for sign in ("\\pm", "\\mp"):
        if text.count(sign) == 1:
            first, second = ("+", "-") if sign == "\\pm" else ("-", "+")
            return [text.replace(sign, first).lstrip("+"), text.replace(sign, second)]
    return [text]


def _assignments_as_tuple(nodes: list) -> list:
    """``p=5,q=2`` (every item a labelled assignment) -> the tuple ``(5,2)``; else the nodes unchanged."""
    if len(nodes) > 1 and all(n[0] == "relation" and n[2] == ["="] and is_label(n[1][0]) for n in nodes):
        return [("tuple", [parse_answer(n[1][1]) for n in nodes], "()")]
    return nodes


def _flat(nodes: list) -> list:
    """Lists inside a list are one list (``\\{1 \\pm \\sqrt5, -2\\}`` has three members)."""
    return [child for node in nodes for child in (node[1] if node[0] == "list" else [node])]


def parse_answer(text: str) -> tuple:
    """The tree of a normalised answer (see the module docstring)."""
    text = text.strip()
    matrix = _MATRIX.fullmatch(text) or _MATRIX.fullmatch(re.sub(r"^[(\[](.*)[)\]]$", r"\1", text))
    if matrix:
        rows = [row for row in re.split(r"\\\\", matrix.group(2)) if row.strip()]
        return "matrix", [[cell.strip() for cell in row.split("&")] for row in rows], matrix.group(0)
    groups = [g for g in split_top_level(text, ";") if g]
    if len(groups) > 1:
        if text.startswith("(") and text.endswith(")") and _closes_at_end(text):
            return parse_answer(text.replace(";", ","))
        nodes = []
        for group in groups:
            node = parse_answer(group)
            nodes.extend(_assignments_as_tuple(node[1]) if node[0] == "list" else [node])
        return "list", nodes
    parts = split_top_level(text, ",")
    if len(parts) > 1:
        return "list", _flat([parse_answer(part) for part in parts if part])
    builder = re.fullmatch(r"\\\{\s*([A-Za-z])\s*(?:\\mid|\||:)(.+)\\\}", text)   # \{x \mid x > 2\}
    if builder:
        return parse_answer(builder.group(2))
    member = re.match(rf"({_NAME})\\in(?![A-Za-z])", text)
    if member:
        return "member", member.group(1), parse_answer(text[member.end():])
    if "\\cup" in text and len(split_top_level(text, "\\cup")) > 1:
        return "union", [parse_answer(part) for part in split_top_level(text, "\\cup")]
    sides, operators = _split_relation(text)
    if operators and all(sides):
        if "~=" in operators:
            first = operators.index("~=")
            if first > 0 and "=" in operators[:first]:
                sides, operators = sides[:first + 1], operators[:first]
            else:
                operators = ["=" if op == "~=" else op for op in operators]
        return "relation", sides, operators
    for opening, closing in (("\\{", "\\}"), ("{", "}")):
        if text.startswith(opening) and text.endswith(closing) and (opening == "\\{" or _closes_at_end(text)):
            inner = text[len(opening):len(text) - len(closing)]
            return "list", _flat([parse_answer(part) for part in split_top_level(inner, ",") if part])
    if len(text) >= 2 and text[0] in "([" and text[-1] in ")]" and _closes_at_end(text):
        inner = split_top_level(text[1:-1], ",")
        if len(inner) == 1:
            inner = split_top_level(text[1:-1], ";")
        if len(inner) > 1:
            return "tuple", [parse_answer(part) for part in inner], text[0] + text[-1]
    expanded = _expand_plus_minus(text)
    if len(expanded) > 1:
        return "list", [("value", part) for part in expanded]
    return "value", text

def same_label(a: str, b: str) -> bool:
    """``x`` and ``x``; ``f(x)`` and ``f(n)`` (the same function of any variable); ratios ``A:B`` and ``V_1:V_2``."""
    if a == b or ":" in a + b:
        return True
    call = re.compile(r"([A-Za-z])\([A-Za-z]\)")
    return bool(call.fullmatch(a) and call.fullmatch(b) and a[0] == b[0])
