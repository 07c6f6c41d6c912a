"""Small helpers shared by the benchmarks' ``convert.py`` files."""

from __future__ import annotations

import math
import re
from typing import Any

from nemo_eval.jsonl import read_jsonl

__all__ = ["read_jsonl", "format_number", "last_boxed", "join_body_question", "canonical_integer",
           "strip_math_delimiters", "read_parquet"]


def format_number(value: Any) -> str:
    """Render a numeric answer the way a person writes it: ``27.0`` -> ``27``, ``2.50`` -> ``2.5``."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        if value.is_integer():
            return str(int(value))
        return repr(value)
    text = str(value).strip()
    try:
        return format_number(float(text)) if re.fullmatch(r"-?\d+(\.\d+)?", text) else text
    except ValueError:
        return text


def canonical_integer(text: str) -> str:
    """``"025"`` -> ``"25"``; anything that is not a plain integer is returned stripped."""
    text = str(text).strip()
    return str(int(text)) if re.fullmatch(r"-?\d+", text) else text


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def join_body_question(body: str, question: str) -> str:
    """Join a word problem's body and question with one space, ending the body with a period."""
    body, question = body.strip(), question.strip()
    if body and body[-1] not in ".!?":
        body += "."
    return f"{body} {question}".strip()


def strip_math_delimiters(text: str) -> str:
    """``"$\\frac{1}{2}$"`` -> ``"\\frac{1}{2}"``: one enclosing ``$...$`` pair removed, nothing else.

    ``"$a$,$b$"`` (two math segments) is kept as it is, since removing its outer ``$`` would join them wrongly.
    """
    text = str(text).strip()
    if len(text) >= 2 and text[0] == "$" and text[-1] == "$" and "$" not in text[1:-1]:
        return text[1:-1].strip()
    return text


def read_parquet(path) -> list[dict[str, Any]]:
    """The rows of a parquet file as dicts (needs pyarrow: ``pip install 'nemo-eval[parquet]'``)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        from nemo_eval.errors import UserError

        raise UserError(f"reading {path} needs pyarrow: pip install 'nemo-eval[parquet]'") from None
    return pq.read_table(path).to_pylist()
