"""Canonical forms of math answers: LaTeX clean-up, structure splitting, exact number parsing.

Standard library only and no eval, so it is safe in our process: the client uses
:func:`normalize_answer` for majority-vote keys, and the sandbox grading program
(``math_equivalence.py``) has this module's source inlined ahead of its own.

- :func:`normalize_answer`: drops ``$``, ``\\left``/``\\right``, spacing commands, ``\\text{}``
  units, degrees, percent signs, thousands separators; ``\\dfrac`` -> ``\\frac``, ``\\frac12`` ->
  ``\\frac{1}{2}``, ``.5`` -> ``0.5``.
- :func:`split_structure`: matrix, equation, interval/tuple, set, bare list, or a single value.
- :func:`as_number`: integers, decimals, scientific notation, ``a/b``, ``\\frac{a}{b}`` and mixed
  numbers as exact fractions.
- :func:`choice_letter`: ``(B)``, ``B``, ``\\textbf{(B)} 12`` -> ``B``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Optional

_DELIMITERS = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$")
_SPACING = re.compile(r"\\(?:left|right|displaystyle|big|Big|bigg|Bigg)(?![a-zA-Z])|(?<!\\)\\[!,;: ]|\\q?quad(?![a-zA-Z])|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![a-zA-Z])|\\circ(?![a-zA-Z])")
_TEXT_WRAPPERS = ("text", "textbf", "textit", "textnormal", "mbox")
_MATH_WRAPPERS = ("mathrm", "mathbf", "mathit", "boldsymbol", "operatorname", "mathsf")
_WRAPPERS = _TEXT_WRAPPERS + _MATH_WRAPPERS
_WORDS = re.compile(r"^[A-Za-z][A-Za-z .]*$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_UNIT_SUFFIX = re.compile(r"^(-?[\d.,/]+)\s+((?:[A-Za-z]{2,}\.?\s*)+)$")
_CONJUNCTION = re.compile(r"\\text\{\s*(?:and|or)\s*\}|\s+(?:and|or)\s+")
_CHOICE = re.compile(r"^\(?([A-J])\)?(?:[\s.:)]|$)")


def matching_brace(text: str, start: int) -> int:
    """Index just after the brace closing ``text[start] == '{'``; -1 if it is never closed."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def _unwrap_commands(text: str, names: tuple[str, ...], drop_words: bool) -> str:
    """``\\text{cm}`` -> ``cm`` (or removed, with ``drop_words``, when it holds only words)."""
    pattern = re.compile(r"\\(" + "|".join(names) + r")\s*\{")
    while True:
        match = pattern.search(text)
        if not match:
            return text
        end = matching_brace(text, match.end() - 1)
        if end < 0:
            return text[:match.start()] + text[match.end():]
        inner = text[match.end():end - 1]
        rest = text[:match.start()] + text[end:]
        keep = not (drop_words and match.group(1) in _TEXT_WRAPPERS and _WORDS.match(inner.strip()) and rest.strip())
        after = text[end:]
        if not keep:  # a dropped unit takes its exponent with it: 24 \text{cm}^2 -> 24
            after = re.sub(r"^\s*\^\s*(?:\{\s*\d+\s*\}|\d)", "", after)
        text = text[:match.start()] + (inner if keep else " ") + after


def _fix_shorthand(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac{a}2`` -> ``\\frac{a}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``."""
    text = re.sub(r"\\[dt]frac(?![a-zA-Z])", r"\\frac", text)
    text = re.sub(r"\\[dt]binom(?![a-zA-Z])", r"\\binom", text)
    text = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*\{", r"\\frac{\1}{", text)
    text = re.sub(r"(\\frac\{[^{}]*\})\s*([0-9a-zA-Z])", r"\1{\2}", text)
    return re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", text)


def normalize_answer(answer: str) -> str:
    """A canonical string for ``answer`` (equal strings mean equal answers; see the module doc)."""
    text = str(answer).strip().replace("\u2212", "-")
    text = re.sub(r"(?<=\d)(?:\\,|\\ |\{,\})(?=\d{3}(?!\d))", "", text)  # 1\,000 and 1{,}000 -> 1000
    text = re.sub(r"\\(?:dollar(?![a-zA-Z])|\$)", "", text)
    text = _DELIMITERS.sub("", text)
    text = _SPACING.sub(" ", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\%", "").replace("%", "")
    text = _CONJUNCTION.sub(",", text)  # "10 and 12", "2 \text{ or } -3": a list of answers
    text = _unwrap_commands(text, _WRAPPERS, drop_words=True)
    text = _fix_shorthand(text)
    text = text.replace("\\langle", "(").replace("\\rangle", ")")
    text = re.sub(r"\\(le|ge)(?![a-zA-Z])", r"\\\1q", text)
    text = re.sub(r"_\{(\w+)\}", r"_\1", text)  # 1011_{2} -> 1011_2, a_{n} -> a_n
    text = text.replace("{,}", "").replace("\\cdot", "*").replace("\\times", "*")
    text = re.sub(r"\s+", " ", text).strip()
    if _THOUSANDS.match(text) or re.fullmatch(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "").replace(" ", "")  # only with no space after the commas: "4, 100" is a list
    text = re.sub(r"\s*([=+\-*/^,(){}\[\]<>|&])\s*", r"\1", text)
    text = re.sub(r"\s+(?=\\)", "", text)  # x \leq 3 -> x\leq 3
    text = re.sub(r"(\\[A-Za-z]+)\s+(?=[^A-Za-z\s])", r"\1", text)  # \leq 3 -> \leq3 (\sin x keeps its space)
    text = text.rstrip(".").strip()
    unit = _UNIT_SUFFIX.match(text)
    if unit and not set(unit.group(2).split()) & {"pi", "sqrt"}:
        text = unit.group(1)
    text = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", text)
    if text.startswith("+"):
        text = text[1:]
    return text


def had_percent(answer: str) -> bool:
    return "%" in str(answer)


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
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index == len(text) - 1
    return False


def split_structure(text: str) -> tuple[str, list, str]:
    """``(kind, parts, brackets)`` of a normalised answer.

    kinds: ``matrix`` (parts are rows), ``equation`` ([lhs, rhs]), ``sequence`` (tuple or interval;
    ``brackets`` like ``"[)"``), ``set`` (``\\{...\\}``, order-free), ``list`` (bare comma list,
    order-free), ``union`` (intervals joined by ``\\cup``), ``value``.
    """
    matrix = re.fullmatch(r"\\begin\{[pbvBV]?matrix\}(.*)\\end\{[pbvBV]?matrix\}", text, re.S) or re.fullmatch(
        r"[(\[]?\\begin\{array\}\{[^{}]*\}(.*)\\end\{array\}[)\]]?", text, re.S)
    if matrix:
        rows = [row for row in re.split(r"\\\\", matrix.group(1)) if row.strip()]
        return "matrix", [[cell.strip() for cell in row.split("&")] for row in rows], ""
    if "\\cup" in text:
        return "union", [part for part in split_top_level(text, "\\cup")], ""
    sides = split_top_level(text, "=")
    if len(sides) == 2 and sides[0] and sides[1] and not re.search(r"[<>!]$|\\[lg]eq?$", sides[0]):
        return "equation", sides, ""
    if text.startswith("\\{") and text.endswith("\\}"):
        return "set", split_top_level(text[2:-2], ","), ""
    if len(text) >= 2 and text[0] in "([" and text[-1] in ")]" and _closes_at_end(text):
        inner = split_top_level(text[1:-1], ",")
        if len(inner) > 1:
            return "sequence", inner, text[0] + text[-1]
    parts = split_top_level(text, ",")
    if len(parts) == 1 and text.count("\\pm") == 1:
        parts = [text.replace("\\pm", "+"), text.replace("\\pm", "-")]
    if len(parts) > 1:
        return "list", parts, ""
    return "value", [text], ""


_PLAIN_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?$")
_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH = re.compile(r"^(-?\d+)/(-?\d+)$")
_MIXED = re.compile(r"^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")


def as_number(text: str) -> Optional[Fraction]:
    """The exact value of a plain numeric answer, or None when it is anything else."""
    try:
        if _PLAIN_NUMBER.match(text):
            return Fraction(text)
        for pattern in (_FRACTION, _SLASH):
            match = pattern.match(text)
            if match:
                groups = match.groups()
                sign = -1 if len(groups) == 3 and groups[0] == "-" else 1
                numerator, denominator = int(groups[-2]), int(groups[-1])
                return None if denominator == 0 else sign * Fraction(numerator, denominator)
        mixed = _MIXED.match(text)
        if mixed and int(mixed.group(4)) != 0:
            value = int(mixed.group(2)) + Fraction(int(mixed.group(3)), int(mixed.group(4)))
            return -value if mixed.group(1) else value
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def numbers_close(a: Fraction, b: Fraction, rel_tol: float = 1e-4) -> bool:
    """Exactly equal, or within ``rel_tol`` relative to the larger magnitude."""
    if a == b:
        return True
    return abs(a - b) <= Fraction(rel_tol) * max(abs(a), abs(b))


def choice_letter(text: str) -> Optional[str]:
    """The multiple-choice letter of an answer like ``(B)``, ``B``, ``B) 12``, ``\\textbf{(B)}``."""
    cleaned = _unwrap_commands(str(text), _WRAPPERS, drop_words=False).replace("$", "").strip()
    match = _CHOICE.match(cleaned)
    return match.group(1) if match else None
