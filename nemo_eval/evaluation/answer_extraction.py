"""Finding the final answer in a model's text (string scanning only, no eval).

Strategies, tried in the configured order (the first that finds something wins):

- ``boxed``: the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces kept), or ``\\boxed 5``;
- ``tag``: the last ``<answer>...</answer>`` (the tag pair is configurable);
- ``answer_is``: the last "The (final) answer is X" (up to the end of its sentence or line);
- ``hash``: the last ``#### X`` (GSM8K's own format);
- ``last_number``: the last number in the text (fallback).

The strategy that found the answer is recorded, so metrics can report format adherence (answers
found by anything but the ``last_number`` fallback). With ``reasoning_tags`` set (e.g.
``<think>``/``</think>``), only the text after the closing tag is searched; an unclosed reasoning
section (generation cut off while thinking) has no answer.

:func:`lm_eval_gsm8k` reproduces lm-evaluation-harness's two GSM8K filters and its exact-match
normalisation, so ``strict`` / ``flexible`` numbers are comparable with published lm-eval ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional

STRATEGIES = ("boxed", "tag", "answer_is", "hash", "last_number")
MAX_ANSWER_CHARS = 1000


@dataclass
class ExtractionConfig:
    """How answers are found in generations."""

    strategies: List[str] = field(default_factory=lambda: list(STRATEGIES), metadata={
        "help": f"answer extraction strategies in priority order, from {', '.join(STRATEGIES)}"})
    answer_tags: List[str] = field(default_factory=lambda: ["<answer>", "</answer>"], metadata={
        "help": "opening and closing tag of the 'tag' strategy, e.g. \"['<SOLUTION>','</SOLUTION>']\""})
    reasoning_tags: Optional[List[str]] = field(default=None, metadata={
        "help": "reasoning section tags, e.g. \"['<think>','</think>']\": answers are searched after the closing tag"})
    lm_eval_variants: bool = field(default=False, metadata={
        "help": "also grade lm-evaluation-harness's GSM8K strict (#### N) and flexible (last number) filters"})


def validate(config: ExtractionConfig) -> Optional[str]:
    """A one-line description of what is wrong with ``config``, or None."""
    unknown = [s for s in config.strategies if s not in STRATEGIES]
    if unknown or not config.strategies:
        return f"extraction.strategies must be a non-empty list from {', '.join(STRATEGIES)} (got {config.strategies})"
    for name in ("answer_tags", "reasoning_tags"):
        tags = getattr(config, name)
        if tags is not None and (len(tags) != 2 or not all(isinstance(t, str) and t for t in tags)):
            return f"extraction.{name} must be two non-empty strings, e.g. \"['<answer>','</answer>']\""
    return None


_BOXED = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _closing_braces(text: str) -> dict[int, int]:
    """``{index of '{': index of its '}'}`` for every closed brace pair, in one pass."""
    pairs, stack = {}, []
    for index, char in enumerate(text):
        if char == "{":
            stack.append(index)
        elif char == "}" and stack:
            pairs[stack.pop()] = index
    return pairs


def last_boxed(text: str) -> Optional[str]:
    """Content of the last non-empty closed ``\\boxed{}`` / ``\\fbox{}`` (or ``\\boxed X``), else None.

    Linear in the text: brace pairs are found in one pass (texts full of unclosed boxes are common
    in cut-off generations and must not make extraction quadratic).
    """
    commands = list(_BOXED.finditer(text))
    if not commands:
        return None
    closes = _closing_braces(text)
    for command in reversed(commands):
        start = command.end()
        while start < len(text) and text[start] in " \t":
            start += 1
        if start < len(text) and text[start] == "{":
            end = closes.get(start)
            content = text[start + 1:end].strip() if end is not None else ""
            if content:
                return content
        elif start > command.end():
            match = re.match(r"[^\s$]+", text[start:start + MAX_ANSWER_CHARS])
            if match and match.group(0).rstrip("."):
                return match.group(0).rstrip(".")
    return None


def last_tagged(text: str, opening: str, closing: str) -> Optional[str]:
    end = text.rfind(closing)
    if end < 0:
        return None
    start = text.rfind(opening, 0, end)
    return text[start + len(opening):end].strip() if start >= 0 else None


ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*", re.I)
HASH = re.compile(r"####\s*")
NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


def _after_last(pattern: re.Pattern, text: str) -> Optional[str]:
    """The rest of the line after the last match of ``pattern``, cut at a sentence-ending period."""
    last = None
    for last in pattern.finditer(text):
        pass
    if last is None:
        return None
    line = text[last.end():last.end() + MAX_ANSWER_CHARS].split("\n", 1)[0].strip()
    line = re.split(r"\.(?:\s|$)", line, maxsplit=1)[0]  # "... is 42. So ..." -> "42" (keeps 3.5)
    line = re.split(r",?\s+(?:since|because|as|which|so|given|when|where)\s", line, maxsplit=1)[0]
    boxed = last_boxed(line)
    answer = (boxed if boxed is not None else line).strip().strip("$*").strip()  # also markdown **bold**
    return answer or None


def last_number(text: str) -> Optional[str]:
    last = None
    for last in NUMBER.finditer(text):
        pass
    return last.group(0).replace(",", "") if last else None


def answer_section(generation: Optional[str], config: ExtractionConfig) -> Optional[str]:
    """The part of ``generation`` answers are searched in (None when there is none)."""
    if not generation:
        return None
    if config.reasoning_tags:
        opening, closing = config.reasoning_tags
        if closing in generation:
            return generation.rsplit(closing, 1)[1]
        if opening in generation:
            return None  # cut off while reasoning
    return generation


def extract_answer(generation: Optional[str], config: ExtractionConfig) -> tuple[Optional[str], Optional[str]]:
    """``(answer, strategy)`` for one generation; ``(None, None)`` when nothing is found."""
    text = answer_section(generation, config)
    if text is None:
        return None, None
    for strategy in config.strategies:
        if strategy == "boxed":
            answer = last_boxed(text)
        elif strategy == "tag":
            answer = last_tagged(text, *config.answer_tags)
        elif strategy == "answer_is":
            answer = _after_last(ANSWER_IS, text)
        elif strategy == "hash":
            answer = _after_last(HASH, text)
        else:
            answer = last_number(text)
        if answer:
            return answer[:MAX_ANSWER_CHARS], strategy
    return None, None


def has_reasoning(line: dict, config: ExtractionConfig) -> Optional[bool]:
    """Whether the line has a closed reasoning section (None when the prompt asks for none)."""
    if not config.reasoning_tags:
        return None
    if line.get("reasoning"):
        return True
    generation = line.get("generation") or ""
    opening, closing = config.reasoning_tags
    return closing in generation and generation.find(opening) < generation.rfind(closing)


# lm-evaluation-harness gsm8k: filters "strict-match" and "flexible-extract", then exact_match with
# ignore_case and regexes_to_ignore [",", "\$", "(?s).*#### ", "\.$"].
LM_EVAL_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
LM_EVAL_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
LM_EVAL_IGNORE = [re.compile(p) for p in (",", r"\$", r"(?s).*#### ", r"\.$")]


def lm_eval_normalize(text: str) -> str:
    for pattern in LM_EVAL_IGNORE:
        text = pattern.sub("", text)
    return text.strip().lower()


def lm_eval_gsm8k(generation: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """``(strict, flexible)`` answers as lm-eval's gsm8k filters pick them (None: "[invalid]")."""
    text = generation or ""
    strict = LM_EVAL_STRICT.search(text)
    flexible = LM_EVAL_FLEXIBLE.findall(text)
    last = next((group for group in flexible[-1] if group), None) if flexible else None
    return (strict.group(1) if strict else None), last


def lm_eval_match(answer: Optional[str], expected: object) -> bool:
    return answer is not None and lm_eval_normalize(answer) == lm_eval_normalize(str(expected))
