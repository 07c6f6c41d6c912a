"""A LaTeX (or plain) math expression -> a sympy object, by a small recursive-descent parser.

Runs inside the sandbox only (it imports sympy, and its input is model-written); the grading
program inlines it after ``math_normalize``. Nothing is ever evaluated as Python: the parser builds
sympy objects itself, so no model text reaches ``eval``/``sympify``.

Grammar, loosest binding first: sum (``+ -``), product (``* /`` and implicit multiplication:
``2x``, ``3\\sqrt{2}``, ``(a+1)(b+2)``), unary sign, power (``^``, right-associative; the exponent of
``x^2y`` is ``2``), postfix (``!``, ``%``, ``'``), then atoms: numbers (decimals are exact rationals;
``1011_2`` is a number in base 2), letters (each letter is a symbol, ``a_{37}`` one symbol; a lone ``e``
is Euler's number, a lone ``i`` the imaginary unit), ``\\frac``, ``\\sqrt[n]{}``, ``\\binom``, functions
(``\\sin^2 x``, ``\\log_2 8``, ``\\ln``, ``\\exp``, ``\\max``, ...), ``|x|``, ``\\lfloor x \\rfloor``,
``\\lceil x\\rceil``, Greek letters, ``\\pi``, ``\\infty``, matrices (``\\begin{pmatrix}...``), and
``\\text{...}`` atoms (a symbol named by the text, so words never vanish).

Numbers too large to compute (``10^{10^{10}}``, ``(10^8)!``, a binomial of huge arguments) raise
:class:`TooBig` while being built, before sympy tries to compute them in C code where no timer reaches.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from nemo_eval.evaluation.braces import matching_brace  # noqa: F401  (inlined in the sandbox program)

MAX_DIGITS = 10000


class Unparsable(ValueError):
    """The text is not an expression this parser understands."""


class TooBig(ValueError):
    """The expression holds a number too large to compute."""


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?(?:[eE][-+]?\d+(?![A-Za-z]))?)|\\text\{([^{}]*)\}|(\\[A-Za-z]+|\\[{}|])"
                    r"|([A-Za-z]+)|(\\\\|\*\*|<=|>=|!=|~=|.))")
_FUNCTIONS = {"sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc", "arcsin": "asin",
              "arccos": "acos", "arctan": "atan", "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh",
              "cosh": "cosh", "tanh": "tanh", "ln": "log", "log": "log", "lg": "log", "exp": "exp", "sqrt": "sqrt",
              "abs": "Abs", "floor": "floor", "ceil": "ceiling", "gcd": "gcd", "lcm": "lcm", "max": "Max",
              "min": "Min", "det": "det"}
_CONSTANTS = {"pi": "pi", "infty": "oo", "infinity": "oo", "inf": "oo", "oo": "oo"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
          "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega",
          "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega"}
_WORDS = sorted(set(_FUNCTIONS) | set(_CONSTANTS), key=len, reverse=True)
_STARTS_FACTOR = {"(", "[", "{", "\\{", "|"}


def tokenize(text: str) -> list[tuple[str, str]]:
    """``[(kind, value)]`` with kinds ``num``, ``text``, ``cmd``, ``name``, ``sym``."""
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise Unparsable(text[position:position + 10])
        position = match.end()
        for kind, value in zip(("num", "text", "cmd", "name", "sym"), match.groups()):
            if value is not None:
                tokens.append((kind, value))
                break
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        import sympy

        self.sp = sympy
        self.tokens = tokenize(text)
        self.index = 0
        self.abs_depth = 0

    # -- token helpers
    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise Unparsable(f"expected {value}")

    def at(self, *values: str) -> bool:
        return self.peek()[1] in values

    # -- grammar
    def parse(self) -> Any:
        value = self.sum()
        if self.peek()[0] != "end":
            raise Unparsable(f"unexpected {self.peek()[1]}")
        return value

    def sum(self) -> Any:
        value = self.product()
        while self.at("+", "-"):
            operator = self.take()[1]
            right = self.product()
            value = value + right if operator == "+" else value - right
        return value

    def product(self, allow_functions: bool = True, explicit: bool = True) -> Any:
        value = self.unary()
        while True:
            if explicit and self.at("*", "/"):
                operator = self.take()[1]
                right = self.unary()
                value = value * right if operator == "*" else self._divide(value, right)
            elif self._starts_implicit_factor(allow_functions):
                value = value * self.power()
            else:
                return value

    def _starts_implicit_factor(self, allow_functions: bool) -> bool:
        kind, value = self.peek()
        if kind in ("name", "text"):
            return allow_functions or value.lower() not in _FUNCTIONS
        if kind == "cmd":
            name = value[1:]
            if name in ("right", "rfloor", "rceil", "end", "}", "|"):
                return False
            return allow_functions or name not in _FUNCTIONS
        if value == "|":
            return self.abs_depth == 0
        return kind == "sym" and value in _STARTS_FACTOR - {"|"}

    def unary(self) -> Any:
        if self.at("-"):
            self.take()
            return -self.unary()
        if self.at("+"):
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Any:
        base = self.postfix(self.atom())
        if self.at("^", "**"):
            self.take()
            exponent = self.exponent()
            return self.postfix(self._power(base, exponent))
        return base

    def exponent(self) -> Any:
        if self.at("-"):
            self.take()
            return -self.exponent()
        value = self.group() if self.at("{") else self.postfix(self.atom())
        if self.at("^"):   # right-associative: 2^3^2 is 2^9
            self.take()
            return self._power(value, self.exponent())
        return value

    def postfix(self, value: Any) -> Any:
        while self.at("!", "%", "'"):
            operator = self.take()[1]
            if operator == "!":
                if value.is_Integer and value > 5000:
                    raise TooBig("factorial")
                value = self.sp.factorial(value)
            elif operator == "%":
                value = value / 100
            else:
                value = self.sp.Symbol(str(value) + "'", real=True)
        return value

    def group(self) -> Any:
        """``{...}``: an expression in braces."""
        self.expect("{")
        value = self.sum()
        self.expect("}")
        return value

    def argument(self) -> Any:
        """The argument of a command: a braced group, else one atom (``\\sqrt2``, ``\\frac12``)."""
        if self.at("{"):
            return self.group()
        return self.atom()

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "num":
            return self._number(value)
        if kind == "text":
            return self.sp.Symbol("text:" + value.strip(), real=True)
        if kind == "name":
            return self._name(value)
        if kind == "cmd":
            return self._command(value[1:])
        if value in ("(", "["):
            inner = self._bracketed(")" if value == "(" else "]")
            return inner
        if value == "{":
            self.index -= 1
            return self.group()
        if value == "|":
            self.abs_depth += 1
            inner = self.sum()
            self.abs_depth -= 1
            self.expect("|")
            return self.sp.Abs(inner)
        raise Unparsable(value or "end")

    def _bracketed(self, closing: str) -> Any:
        items = [self.sum()]
        while self.at(","):
            self.take()
            items.append(self.sum())
        self.expect(closing)
        if len(items) > 1:
            raise Unparsable("a tuple inside an expression")
        return items[0]

    # -- atoms
    def _number(self, text: str) -> Any:
        if len(text) > MAX_DIGITS:
            raise TooBig("literal")
        if self.at("_") and "." not in text:
            self.take()
            base = self.take()[1]
            try:
                return self.sp.Integer(int(text, int(base)))
            except ValueError:
                raise Unparsable("base") from None
        return self.sp.Rational(text)

    def _subscript(self) -> str:
        if not self.at("_"):
            return ""
        self.take()
        if self.at("{"):
            start = self.index
            depth = 0
            while True:
                kind, value = self.take()
                if kind == "end":
                    raise Unparsable("subscript")
                depth += {"{": 1, "}": -1}.get(value, 0)
                if depth == 0:
                    break
            return "_" + "".join(v for _, v in self.tokens[start + 1:self.index - 1])
        return "_" + self.take()[1]

    def _symbol(self, name: str) -> Any:
        return self.sp.Symbol(name, real=True)

    def _name(self, letters: str) -> Any:
        lower = letters.lower()
        for word in _WORDS:
            if lower.startswith(word) and (lower == word or word in _FUNCTIONS):
                rest = letters[len(word):]
                if rest:
                    self.tokens.insert(self.index, ("name", rest))
                if word in _CONSTANTS:
                    return getattr(self.sp, _CONSTANTS[word])
                return self._function(word)
        if len(letters) > 1:
            self.tokens.insert(self.index, ("name", letters[1:]))
            letters = letters[0]
            return self._letter(letters, subscript="")
        return self._letter(letters, self._subscript())

    def _letter(self, letter: str, subscript: str) -> Any:
        if not subscript and letter == "e":
            return self.sp.E
        if not subscript and letter == "i":
            return self.sp.I
        return self._symbol(letter + subscript)

    def _command(self, name: str) -> Any:
        sp = self.sp
        if name == "frac":
            numerator = self.argument()
            return self._divide(numerator, self.argument())
        if name == "sqrt":
            if self.at("["):
                self.take()
                root = self.sum()
                self.expect("]")
                return self._power(self.argument(), 1 / root)
            return self._power(self.argument(), sp.Rational(1, 2))
        if name in ("binom", "choose"):
            top = self.argument()
            bottom = self.argument()
            if top.is_number and (not top.is_finite or abs(top) > 10 ** 5):
                raise TooBig("binomial")
            return sp.binomial(top, bottom)
        if name in _CONSTANTS:
            return getattr(sp, _CONSTANTS[name])
        if name == "Gamma" and self.at("("):
            return sp.gamma(self._call_arguments()[0])
        if name in _GREEK:
            return self._symbol(name + self._subscript())
        if name in _FUNCTIONS:
            return self._function(name)
        if name in ("lfloor", "lceil"):
            inner = self.sum()
            self.expect("\\rfloor" if name == "lfloor" else "\\rceil")
            return sp.floor(inner) if name == "lfloor" else sp.ceiling(inner)
        if name == "{":
            raise Unparsable("a set inside an expression")
        if name == "begin":
            return self._matrix()
        if name in ("sum", "prod"):
            return self._big_operator(name)
        if name in ("overline", "bar", "vec", "hat", "widehat", "overrightarrow", "mathbf", "tilde"):
            start = self.index
            inner = self.argument()
            return self._symbol(f"{name}:" + "".join(v for _, v in self.tokens[start:self.index]) if inner is not None else name)
        raise Unparsable("\\" + name)

    def _big_operator(self, name: str) -> Any:
        """``\\sum_{k=a}^{b} body`` / ``\\prod``: an unevaluated sympy Sum/Product over the product that follows."""
        self.expect("_")
        self.expect("{")
        variable = self.atom()
        self.expect("=")
        low = self.sum()
        self.expect("}")
        self.expect("^")
        high = self.exponent()
        body = self.product()
        if not getattr(variable, "is_Symbol", False):
            raise Unparsable("summation variable")
        return (self.sp.Sum if name == "sum" else self.sp.Product)(body, (variable, low, high))

    def _call_arguments(self) -> list:
        self.expect("(")
        items = [self.sum()]
        while self.at(","):
            self.take()
            items.append(self.sum())
        self.expect(")")
        return items

    def _function(self, name: str) -> Any:
        sp = self.sp
        base = None
        if name in ("log", "lg") and self.at("_"):
            self.take()
            base = self.argument()
        elif name == "lg":
            base = sp.Integer(10)
        power = None
        if self.at("^"):
            self.take()
            power = self.exponent()
        if self.at("("):
            arguments = self._call_arguments()
        elif self.at("{"):
            arguments = [self.group()]
        else:
            arguments = [self.product(allow_functions=False, explicit=False)]   # \\sin 2x, \\ln 8 / \\ln 2
        target = _FUNCTIONS[name]
        if target == "sqrt":
            value = self._power(arguments[0], sp.Rational(1, 2))
        elif target in ("Max", "Min", "gcd", "lcm"):
            value = getattr(sp, target)(*arguments)
        elif target == "log" and base is not None:
            value = sp.log(arguments[0], base)
        elif target == "det":
            value = arguments[0].det() if hasattr(arguments[0], "det") else arguments[0]
        else:
            if len(arguments) != 1:
                raise Unparsable(name)
            value = getattr(sp, target)(arguments[0])
        return self._power(value, power) if power is not None else value

    def _matrix(self) -> Any:
        self.expect("{")
        environment = self.take()[1]
        self.expect("}")
        if environment == "array" and self.at("{"):
            while not self.at("}"):
                self.take()
            self.take()
        rows, row = [], [[]]
        while True:
            kind, value = self.take()
            if kind == "end":
                raise Unparsable("unclosed matrix")
            if value == "\\end":
                self.expect("{")
                self.take()
                self.expect("}")
                break
            if value == "&":
                row.append([])
            elif value == "\\\\":
                rows.append(row)
                row = [[]]
            else:
                row[-1].append((kind, value))
        rows.append(row)
        cells = [[_parse_tokens(cell) for cell in r] for r in rows if any(c for c in r)]
        if not cells or len({len(r) for r in cells}) != 1:
            raise Unparsable("ragged matrix")
        return self.sp.Matrix(cells)

    # -- guarded arithmetic
    def _divide(self, numerator: Any, denominator: Any) -> Any:
        if denominator == 0:
            raise Unparsable("division by zero")
        return numerator / denominator

    def _power(self, base: Any, exponent: Any) -> Any:
        sp = self.sp
        if getattr(base, "is_Matrix", False):
            return base ** exponent
        if base.is_number and exponent.is_number:
            magnitude = abs(exponent) if exponent.is_finite else sp.oo
            if magnitude > 10 ** 6 and abs(base) not in (0, 1):
                raise TooBig("power")
            try:
                import math
                size = float(abs(sp.re(exponent))) * math.log10(max(float(abs(base)), 1e-300))
            except (TypeError, ValueError, OverflowError):
                size = 0.0
            if abs(size) > MAX_DIGITS:
                raise TooBig("power")
        return base ** exponent


def _parse_tokens(tokens: list) -> Any:
    parser = _Parser("")
    parser.tokens = list(tokens)
    return parser.parse()


def parse_latex(text: str) -> Any:
    """The sympy value of ``text`` (a normalised answer); raises :class:`Unparsable` or :class:`TooBig`."""
    if not text or not text.strip():
        raise Unparsable("empty")
    return _Parser(text).parse()


def latex_value(text: str) -> Optional[Any]:
    """Like :func:`parse_latex` but None when the text is not an expression."""
    try:
        return parse_latex(text)
    except (Unparsable, TooBig, RecursionError):
        return None
    except (TypeError, ValueError, AttributeError, ZeroDivisionError, NotImplementedError):
        return None
