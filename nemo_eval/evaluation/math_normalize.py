"""Canonical text of a math answer: LaTeX clean-up, numbers as written, percent and units.

Standard library only and no eval, so it is safe in our process: the client uses
:func:`normalize_answer` for majority-vote keys, and the sandbox grading program has this module's
source inlined (see ``math_grader.grading_program``).

:func:`normalize_answer` turns what a model (or a dataset) writes into one canonical string, so
that equal strings mean equal answers. What it does, in order:

- unicode math (``−``, ``≤``, ``√``, ``π``, ``²`` ...) becomes LaTeX; doubly escaped LaTeX
  (``\\\\frac``) is unescaped; ``\\left.``/``\\right.``, a trailing ``\\``, ``$``/``\\(``/``\\[``
  delimiters, spacing commands (``\\,``, ``\\!``, ``\\quad``, ``~``) and ``\\displaystyle`` go;
- thousands separators go (``1,000``, ``12,\\!345``, ``20{,}000``, ``1\\,000``, ``1 000``);
  ``4, 100`` (a space after the comma) stays a list;
- ``\\dfrac``/``\\tfrac``/``\\cfrac`` -> ``\\frac``, ``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``;
- relations get one spelling (``\\le``, ``\\leq``, ``\\leqslant``, ``<=`` -> ``<=``; ``\\neq`` -> ``!=``;
  ``\\approx`` -> ``~=``), ``\\cdot``/``\\times`` -> ``*``, ``\\div`` -> ``/``;
- percent (``\\%``, ``%``, "percent", "pct") becomes one trailing ``%``; degrees go;
- ``\\text{}``-like wrappers are unwrapped; a unit after a number goes (``24 \\text{ cm}^2`` -> ``24``,
  ``125 miles`` -> ``125``); "and"/"or" between answers become commas;
- spaces go, except inside words.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Optional

from nemo_eval.evaluation.braces import matching_brace  # inlined before this module in the sandbox program

_UNICODE = {"\u2212": "-", "\u2013": "-", "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\neq ", "\u00d7": "\\times ",
            "\u00b7": "\\cdot ", "\u22c5": "\\cdot ", "\u00f7": "\\div ", "\u03c0": "\\pi ", "\u221e": "\\infty ",
            "\u221a": "\\sqrt", "\u00b2": "^2", "\u00b3": "^3", "\u00b1": "\\pm ", "\u2248": "\\approx ",
            "\u222a": "\\cup ", "\u2229": "\\cap ", "\u2208": "\\in ", "\u00bd": "(1/2)", "\uff05": "%", "\u2009": " ",
            "\u00a0": " ", "\u202f": " "}
_ESCAPED_COMMANDS = re.compile(
    r"(?<!\\)\\\\(?=(?:frac|dfrac|tfrac|cfrac|sqrt|boxed|left|right|text|mathrm|mathbf|le|leq|ge|geq|neq|ne|pi|infty|cdot|"
    r"times|in|cup|cap|pm|mp|quad|qquad|begin|end|sin|cos|tan|log|ln|alpha|beta|theta|binom|dbinom|circ|approx|"
    r"lt|gt|sum|prod|displaystyle|mbox|operatorname|emptyset|varnothing)(?![A-Za-z]))")
_DELIMITERS = re.compile(r"\\\(|\\\)|\\\[|\\\]|(?<!\\)\$")
_SPACING = re.compile(r"\\(?:displaystyle|textstyle|limits|nolimits|big|Big|bigg|Bigg)[lr]?(?![a-zA-Z])"
                      r"|\\(?:q?quad|hspace\{[^{}]*\}|enspace|thinspace|medspace|thickspace)|(?<!\\)\\[!,;: ]|~")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\u00b0|\\degree(?![a-zA-Z])|\\circ(?![a-zA-Z])"
                      r"|(?<=\d)\s*(?:\\text\{\s*)?degrees?(?:\s*\})?(?![A-Za-z])")
_PERCENT = re.compile(r"\s*(?:\\%|%|\\text\{\s*%\s*\}|\\(?:text|mbox|mathrm)\{\s*(?:percent(?:age)?|pct)\s*\}"
                      r"|(?<![A-Za-z])(?:percent(?:age)?|pct)(?![A-Za-z]))")
_TEXT_WRAPPERS = ("text", "textbf", "textit", "textnormal", "textrm", "textsf", "texttt", "mbox", "hbox")
_MATH_WRAPPERS = ("mathrm", "mathbf", "mathit", "boldsymbol", "bm", "mathsf", "mathnormal", "operatorname", "mathcal",
                  "mathbb", "boxed", "fbox", "underline", "emph")
_UNITS = {"cm", "mm", "m", "km", "in", "inch", "inches", "ft", "foot", "feet", "yd", "yard", "yards", "mi", "mile",
          "miles", "g", "kg", "mg", "lb", "lbs", "pound", "pounds", "oz", "ounce", "ounces", "l", "ml", "liter", "liters",
          "litre", "litres", "gallon", "gallons", "s", "sec", "second", "seconds", "min", "minute", "minutes", "h", "hr",
          "hrs", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years", "dollar", "dollars",
          "cent", "cents", "yuan", "euro", "euros", "unit", "units", "meter", "meters", "metre", "metres", "centimeter",
          "centimeters", "square", "sq", "cubic", "mph", "kmh", "rad", "radian", "radians", "people", "students",
          "points", "ways", "times", "items", "apples", "marbles", "coins", "books", "steps", "numbers", "integers",
          "digits", "cups", "pages", "boxes", "eggs", "cookies", "candies", "pieces", "tickets", "trees", "balls"}
_WORD = re.compile(r"[A-Za-z]+")
_RELATIONS = [(r"\\leqslant|\\leq|\\le(?![a-zA-Z])|<=", "<="), (r"\\geqslant|\\geq|\\ge(?![a-zA-Z])|>=", ">="),
              (r"\\neq|\\ne(?![a-zA-Z])|!=|=/=", "!="), (r"\\lt(?![a-zA-Z])", "<"), (r"\\gt(?![a-zA-Z])", ">"),
              (r"\\approx|\\simeq|\\sim(?![a-zA-Z])", "~="), (r"\\Rightarrow|\\implies|\\Longrightarrow", " \\Rightarrow ")]


def _unit_words(words: list) -> bool:
    return bool(words) and all(w.lower() in _UNITS or w.lower().rstrip("s") in _UNITS for w in words)


def _describes_a_number(before: str, after: str) -> bool:
    """Whether text between ``before`` and ``after`` is a unit or description of the value before it."""
    rest = re.sub(r"^\s*\^\s*(?:\{\s*\d+\s*\}|\d)", "", after)
    return bool(re.search(r"(?:[\d})%.]|\\[A-Za-z]+)\s*$", before)) and not re.sub(r"[\s.,;:!)]", "", rest)


def unwrap_commands(text: str, names: tuple) -> str:
    """Unwrap ``\\text{}``-like commands.

    A description after a number at the end goes (``24 \\text{ cm}^2`` -> ``24``); "and"/"or" become
    commas; a whole-answer text stays as its words; words inside a larger expression stay one atom
    ``\\text{...}`` (so ``\\text{(D)}+2`` never loses its text).
    """
    pattern = re.compile(r"\\(" + "|".join(names) + r")\s*\{")
    position = 0
    while True:
        match = pattern.search(text, position)
        if not match:
            return text
        end = matching_brace(text, match.end() - 1)
        if end < 0:
            return text[:match.start()] + text[match.end():]
        inner, before, after = text[match.end():end - 1], text[:match.start()], text[end:]
        words = _WORD.findall(inner)
        if re.fullmatch(r"\s*(?:and|or|,)\s*", inner):
            inner = ","
        elif words and not re.search(r"\d", inner) and _describes_a_number(before, after) and (
                match.group(1) in _TEXT_WRAPPERS or _unit_words(words)):
            after, inner = re.sub(r"^\s*\^\s*(?:\{\s*\d+\s*\}|\d)", "", after), " "
        elif match.group(1) in _TEXT_WRAPPERS and re.search(r"[A-Za-z]{2}", inner) and (before.strip() or after.strip()):
            inner = "\\text{" + re.sub(r"\s+", " ", inner.strip()) + "}"
            text = before + inner + after
            position = len(before) + len(inner)
            continue
        text = before + inner + after
        position = len(before)


def _repeating(match: re.Match) -> str:
    """``1.2\\overline{34}`` as the exact fraction it denotes."""
    whole, fixed, period = match.group(1) or "0", match.group(2), match.group(3)
    value = Fraction(f"{whole}.{fixed}" if fixed else whole) + Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _fix_shorthand(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac{a}2`` -> ``\\frac{a}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``."""
    text = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", text)
    text = re.sub(r"\\[dt]binom(?![a-zA-Z])", r"\\binom", text)
    text = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\s*([0-9a-zA-Z])\s*\{", r"\\frac{\1}{", text)
    text = re.sub(r"(\\frac\{[^{}]*\})\s*([0-9a-zA-Z])", r"\1{\2}", text)
    return re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", text)


def _drop_thousands(text: str) -> str:
    """Thousands separators: LaTeX ones anywhere (``12,\\!345``, ``20{,}000``, ``1\\,000``); plain ``1,000`` and
    ``1 000`` only when they are the whole answer (``(1,234)`` is a pair)."""
    text = re.sub(r"(?<=\d),\s*\\!\s*(?=\d{3}(?!\d))", "", text)
    text = re.sub(r"(?<=\d)\s*(?:\{\s*,\s*\}|\\,|\\ |\\;)\s*(?=\d{3}(?!\d))", "", text)
    whole = re.fullmatch(r"\s*(-?)([1-9]\d{0,2}(?:,\d{3})+|[1-9]\d{0,2}(?: \d{3})+)(\.\d+)?\s*", text)
    if whole:
        return whole.group(1) + re.sub(r"[, ]", "", whole.group(2)) + (whole.group(3) or "")
    return text


def normalize_answer(answer: object) -> str:
    """A canonical string for ``answer`` (equal strings mean equal answers; see the module doc)."""
    text = str(answer).strip()
    for char, replacement in _UNICODE.items():
        text = text.replace(char, replacement)
    if _ESCAPED_COMMANDS.search(text):
        text = re.sub(r"(?<!\\)\\\\(?=[A-Za-z{}])", r"\\", text)
    text = re.sub(r"\\mathbb\{R\}|\\R(?![a-zA-Z])|\\Reals(?![a-zA-Z])", lambda _: "(-\\infty,\\infty)", text)
    text = re.sub(r"\\(?:left|right)\s*\.", " ", text)
    text = re.sub(r"\\(?:left|right)(?![a-zA-Z])\s*", "", text)
    text = re.sub(r"\\(?:dollar(?![a-zA-Z])|\$)|\\euro(?![a-zA-Z])|\\pounds(?![a-zA-Z])|[\u20ac\u00a3\u00a5]", "", text)
    text = _DELIMITERS.sub(" ", text)
    text = _drop_thousands(text)
    text = _SPACING.sub(" ", text)
    text = re.sub(r"\\+\s*$", "", text)
    text = _DEGREES.sub("", text)
    percent = bool(_PERCENT.search(text))
    text = _PERCENT.sub(" ", text)
    text = re.sub(r"(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])", ",", text)  # 12 and 13, (5,2)or(2,5)
    text = re.sub(r"(?<=[\d)\]}])(?:and|or)(?=[A-Z(\[{\\\-\d])", ",", text)  # W(x)=1orW(x)=-1
    text = unwrap_commands(text, _TEXT_WRAPPERS + _MATH_WRAPPERS)
    text = _fix_shorthand(text)
    text = re.sub(r"(\d*)\.(\d*)\\(?:overline|bar|dot)\{(\d+)\}", _repeating, text)   # 0.\overline{3} -> 1/3
    text = text.replace("\\langle", "(").replace("\\rangle", ")").replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    for pattern, replacement in _RELATIONS:
        text = re.sub(pattern, lambda _, fixed=replacement: fixed, text)
    text = re.sub(r"\\(?:cdot|times|ast)(?![a-zA-Z])", "*", text)
    text = re.sub(r"\\div(?![a-zA-Z])", "/", text)
    text = re.sub(r"\\(?:emptyset|varnothing)(?![a-zA-Z])", "\\{\\}", text)
    text = re.sub(r"_\{\s*([A-Za-z0-9]+)\s*\}", r"_\1", text)                 # 1011_{2} -> 1011_2, a_{n} -> a_n
    text = text.replace("{,}", ",")
    text = _strip_unit_suffix(re.sub(r"\s+", " ", text).strip())
    text = _drop_thousands(text)
    text = re.sub(r"\s*([=+\-*/^,;(){}\[\]<>|&:!~])\s*", r"\1", text)
    text = re.sub(r"\s+(?=\\)", "", text)                                   # x \in -> x\in
    text = re.sub(r"(\\[A-Za-z]+)\s+(?=[^A-Za-z\s])", r"\1", text)          # \pi 2 -> \pi2 (\sin x keeps its space)
    text = re.sub(r",+", ",", text).rstrip(" ,.;:").lstrip(" ,;:")
    text = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", text)
    text = re.sub(r"(?<![\w)\]}])\+(?=[\d.\\(a-zA-Z])", "", text)            # +5 -> 5, (1,+\infty) -> (1,\infty)
    text = re.sub(r"^\((-?[\d./]+)\)$", r"\1", text)                        # (5) -> 5
    return text + "%" if percent and text else text


_MATH_WORDS = {"sqrt", "pi", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "infty", "inf"}


def _strip_unit_suffix(text: str) -> str:
    """``125 miles`` -> ``125``, ``3 hours ago`` -> ``3``: words after a number at the end describe it."""
    match = re.fullmatch(r"(.*?(?:[\d})%]|\\[A-Za-z]+))\s+((?:[A-Za-z]+\.?\s*)+)(\^\s*\{?\d\}?)?", text)
    if not match:
        return text
    words = _WORD.findall(match.group(2))
    if any(w.lower() in _MATH_WORDS for w in words) or any(len(w) == 1 and w.lower() not in _UNITS for w in words):
        return text
    return match.group(1).strip()


def is_percent(text: str) -> bool:
    return text.endswith("%")


_PLAIN_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?$")
_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH = re.compile(r"^(-?\d+)/(-?\d+)$")
_MIXED = re.compile(r"^(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_DECIMAL_COMMA = re.compile(r"^(-?)(0|\d+(?=,\d{1,2}$)|\d{4,}),(\d+)$")


def as_number(text: str) -> Optional[Fraction]:
    """The exact value of a plain numeric answer (integer, decimal, ``a/b``, ``\\frac{a}{b}``, mixed), else None."""
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


def decimal_comma(text: str) -> Optional[str]:
    """``3,75`` -> ``3.75`` where a comma can only be a decimal comma (1-2 digits after it, ``0,111``, ``1000,5``)."""
    match = _DECIMAL_COMMA.match(text)
    return f"{match.group(1)}{match.group(2)}.{match.group(3)}" if match else None


def written_decimals(text: str) -> Optional[int]:
    """Digits written after the decimal point of a plain decimal (``2.50`` -> 2), else None (exact forms)."""
    match = re.fullmatch(r"-?\d*\.(\d+)", text)
    return len(match.group(1)) if match else None


def significant_digits(text: str) -> int:
    digits = re.sub(r"[^\d]", "", text.split("e")[0].split("E")[0]).lstrip("0")
    return len(digits)


_CHOICE = re.compile(r"^(?:\\text\{)?\(?([A-J])\)?\}?(?:[.:)]?(?:\s.*)?)?$", re.S)


def choice_letter(text: str) -> Optional[str]:
    """The multiple-choice letter of an answer like ``(B)``, ``B``, ``B) 12``, ``\\textbf{(B)}``; else None."""
    cleaned = unwrap_commands(str(text), _TEXT_WRAPPERS + _MATH_WRAPPERS)
    cleaned = _SPACING.sub(" ", _DELIMITERS.sub("", cleaned)).strip()
    match = _CHOICE.match(cleaned)
    return match.group(1) if match else None


def vote_key(answer: object) -> str:
    """The key majority voting groups answers by: the canonical text, with plain numbers as exact values
    (``0.5``, ``1/2`` and ``\\frac{1}{2}`` are one vote; ``0.333`` and ``\\frac13`` stay two)."""
    text = normalize_answer(answer)
    value = as_number(text.rstrip("%"))
    return text if value is None else f"{value}{'%' if is_percent(text) else ''}"

