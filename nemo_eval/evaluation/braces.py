"""The one scanner of brackets in model-written math: matching braces and ``\\boxed{}`` answers.

Answer extraction (in our process) finds boxes with it; the grading program that runs in the
sandbox inlines this module first (``math_grader.PROGRAM_MODULES``), so it uses the standard library
only and its imports of other modules are single lines. Every scan is one linear pass.
"""

from __future__ import annotations

import re
from typing import Iterator

BOXED = re.compile(r"\\\\?(?:boxed|fbox)(?![A-Za-z])")
BOX_WORD_CHARS = 1000  # an unbraced ``\boxed X`` takes at most this much of the text after it


def bracket_pairs(text: str, opening: str = "{", closing: str = "}", start: int = 0) -> Iterator[tuple[int, int]]:
    """``(index of the opening bracket, index of its closing one)`` of each closed pair from ``start`` on, in
    the order they close. Any character of ``opening`` opens, any of ``closing`` closes; a closing bracket
    with nothing open is skipped."""
    stack: list[int] = []
    for index in range(start, len(text)):
        char = text[index]
        if char in opening:
            stack.append(index)
        elif char in closing and stack:
            yield stack.pop(), index


def closing_braces(text: str) -> dict[int, int]:
    """``{index of '{': index of its '}'}`` for every closed brace pair of ``text``."""
    return dict(bracket_pairs(text))


def matching_brace(text: str, start: int, opening: str = "{", closing: str = "}") -> int:
    """Index just after the bracket closing the one at ``text[start]``; -1 if it is never closed (or
    ``text[start]`` opens nothing)."""
    for opened, closed in bracket_pairs(text, opening, closing, start):
        if opened == start:
            return closed + 1
    return -1


def boxes(text: str, allow_unclosed: bool = False) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every non-empty ``\\boxed{}``/``\\fbox{}`` (or ``\\boxed X``), in order.

    With ``allow_unclosed`` a box whose brace never closes takes the rest of the text.
    """
    found: list[tuple[int, int, str]] = []
    commands = list(BOXED.finditer(text))
    if not commands:
        return found
    closes = closing_braces(text)
    for command in commands:
        start = command.end()
        while start < len(text) and text[start] in " \t":
            start += 1
        if start < len(text) and text[start] == "{":
            end = closes.get(start)
            if end is None and allow_unclosed:
                content, end = text[start + 1:], len(text) - 1
            else:
                content = text[start + 1:end].strip() if end is not None else ""
            if content.strip():
                found.append((command.start(), end + 1, content.strip()))
        elif start > command.end():
            match = re.match(r"[^\s$]+", text[start:start + BOX_WORD_CHARS])
            if match and match.group(0).rstrip("."):
                found.append((command.start(), start + match.end(), match.group(0).rstrip(".")))
    return found
