"""Finding the final answer in a model's text (string scanning only, no eval; linear in the text).

One documented order (docs/evaluation.md), for ``mode="math"``:

1. **Final-answer markers**, of the enabled ``strategies``; the one that occurs **last** in the text
   wins, so a final statement beats an intermediate ``\\boxed{}``:
   ``boxed`` (``\\boxed{}``/``\\fbox{}``; boxes next to each other, or joined only by "and"/commas, are
   one list: ``\\boxed{2}, \\boxed{4}``), ``tag`` (``<answer>...</answer>``), ``answer_is`` ("the (final)
   answer is X", "Answer: X"), ``answer_line`` (a "Final Answer" heading, the answer on the next line),
   ``hash`` (``#### X``). What a marker captures is cleaned: a box inside wins, the sentence ends at
   ". " or a line end, and when words remain ("The volume is 120") the last stated expression is taken.
2. ``whole``: a text that is itself a bare answer (no prose: ``$\\frac{1}{2}$``, ``125 miles``,
   ``x = 3``) is taken whole.
3. **Fallbacks** (``last_math``, ``last_number``): the last ``$...$``/``\\(...\\)``/``\\[...\\]`` segment
   or the last number (``2/3``, ``-1,234.5``, ``3,75``, ``12%``), whichever ends later; not for a
   response that was cut off (it stops mid-sentence, or the server said ``finish_reason: length``).

Other modes: ``gsm8k`` (markers, then numbers only), ``gsm8k_strict``/``gsm8k_flexible``
(lm-evaluation-harness's two filters, exactly), ``multiple_choice`` (a letter, see
:func:`extract_choice`), ``answer_line`` ("Answer: X" lines only).

The strategy that found the answer is recorded, so metrics can report format adherence (answers
found by a marker). With ``reasoning_tags`` set, only the text after the closing tag is searched.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from nemo_eval.evaluation.braces import BOXED, boxes

MARKERS = ("boxed", "tag", "answer_is", "answer_line", "hash")
FALLBACKS = ("whole", "last_math", "last_number")
STRATEGIES = MARKERS + FALLBACKS
MODES = ("math", "gsm8k", "gsm8k_strict", "gsm8k_flexible", "multiple_choice", "answer_line")
MAX_ANSWER_CHARS = 1000
LM_EVAL_TASKS = (None, "gsm8k", "gsm8k_cot", "minerva_math")


@dataclass
class ExtractionConfig:
    """How answers are found in generations."""

    strategies: List[str] = field(default_factory=lambda: list(STRATEGIES), metadata={
        "help": f"enabled answer extraction strategies, from {', '.join(STRATEGIES)}; markers "
                f"({', '.join(MARKERS)}) compete by position (the last in the text wins), then fallbacks"})
    answer_tags: List[str] = field(default_factory=lambda: ["<answer>", "</answer>"], metadata={
        "help": "opening and closing tag of the 'tag' strategy, e.g. \"['<SOLUTION>','</SOLUTION>']\""})
    reasoning_tags: Optional[List[str]] = field(default=None, metadata={
        "help": "reasoning section tags, e.g. \"['<think>','</think>']\": answers are searched after the closing tag"})
    lm_eval_variants: bool = field(default=False, metadata={
        "help": "also grade lm-evaluation-harness's GSM8K strict (#### N) and flexible (last number) filters"})
    lm_eval_task: Optional[str] = field(default=None, metadata={
        "help": "the lm-eval task whose own scores are added: gsm8k (#### N) or gsm8k_cot (The answer is N.) "
                "for lm_eval_variants' strict filter; minerva_math adds exact_match and math_verify (needs "
                "lm_eval_python); default: the one the generation's prompt config names (lm-eval/gsm8k-cot, "
                "lm-eval/minerva-math), else gsm8k"})
    lm_eval_python: Optional[str] = field(default=None, metadata={
        "help": "a Python with sympy, antlr4-python3-runtime 4.11 and math-verify that computes lm-eval's "
                "minerva_math scores in isolated workers (default: $NEMO_EVAL_LM_EVAL_PYTHON, else "
                "~/.cache/nemo-eval/lm-eval-math/bin/python; docs/evaluation.md)"})


def validate(config: ExtractionConfig) -> Optional[str]:
    """A one-line description of what is wrong with ``config``, or None."""
    unknown = [s for s in config.strategies if s not in STRATEGIES]
    if unknown or not config.strategies:
        return f"extraction.strategies must be a non-empty list from {', '.join(STRATEGIES)} (got {config.strategies})"
    if config.lm_eval_task not in LM_EVAL_TASKS:
        return f"extraction.lm_eval_task must be one of {', '.join(LM_EVAL_TASKS[1:])} (got {config.lm_eval_task!r})"
    for name in ("answer_tags", "reasoning_tags"):
        tags = getattr(config, name)
        if tags is not None and (len(tags) != 2 or not all(isinstance(t, str) and t for t in tags)):
            return f"extraction.{name} must be two non-empty strings, e.g. \"['<answer>','</answer>']\""
    return None


_CORRECTIONS = {"rather", "actually", "wait", "no", "not", "instead", "correction", "sorry", "mean", "but"}


def _joinable(between: str) -> bool:
    """Whether the text between two boxes joins them into one answer.

    Commas, spacing and "and"/"or" alone join (``\\boxed{2}, \\boxed{4}``, ``\\boxed{1} \\quad \\text{and}``);
    a few other words join only beside an "and" (``\\boxed{1} papers and \\boxed{2} bins``); a correction
    ("or rather", "no"), a sentence end or a paragraph break does not.
    """
    if "\n\n" in between.strip():
        return False
    stripped = re.sub(r"\\(?:text|mbox|textbf)\{([^{}]*)\}", r" \1 ", between)
    stripped = re.sub(r"\\[A-Za-z]+|[$()\[\]\\]", " ", stripped)
    if "." in re.sub(r"\d\.\d", "", stripped).strip(" ."):
        return False
    words = [w.lower() for w in re.findall(r"[A-Za-z]{2,}", stripped)]
    others = [w for w in words if w not in ("and", "or")]
    if not others:
        return True
    return "and" in words and len(others) <= 3 and not set(others) & _CORRECTIONS


def final_boxed(text: str, allow_unclosed: bool = False) -> Optional[tuple[int, str]]:
    """``(start, content)`` of the last box, with the boxes joined to it (``\\boxed{1}, \\boxed{2}`` -> ``1, 2``)."""
    found = boxes(text, allow_unclosed)
    if not found:
        return None
    group = [found[-1]]
    for box in reversed(found[:-1]):
        if not _joinable(text[box[1]:group[0][0]]):
            break
        group.insert(0, box)
    contents = list(dict.fromkeys(box[2] for box in group))
    return group[0][0], ", ".join(contents)


def last_boxes(text: str, count: int) -> Optional[str]:
    """The last ``count`` boxes joined as one list (answers to a question in several parts), or None."""
    found = boxes(text)[-count:]
    if len(found) < count:
        return None
    for before, after in zip(found, found[1:]):
        between = {w.lower() for w in re.findall(r"[A-Za-z]+", text[before[1]:after[0]])}
        if between & (_CORRECTIONS | {"mistake", "wrong", "incorrect", "oops"}):
            return None   # the later box corrects the earlier one
    return ", ".join(box[2] for box in found)


def math_segments(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of ``$$..$$``, ``$..$`` (one line), ``\\(..\\)``, ``\\[..\\]``, in order."""
    segments, index = [], 0
    while index < len(text):
        if text.startswith("\\(", index) or text.startswith("\\[", index):
            closing = "\\)" if text[index + 1] == "(" else "\\]"
            end = text.find(closing, index + 2)
            if end < 0 or (closing == "\\)" and "\n" in text[index:end]):
                index += 2
                continue
            segments.append((index, end + 2, text[index + 2:end]))
            index = end + 2
        elif text[index] == "$" and (index == 0 or text[index - 1] != "\\"):
            display = text.startswith("$$", index)
            opening = 2 if display else 1
            end = index + opening
            while True:
                end = text.find("$$" if display else "$", end)
                if end < 0 or text[end - 1] != "\\":
                    break
                end += 1
            if end < 0 or (not display and "\n" in text[index:end]):
                index += opening
                continue
            segments.append((index, end + opening, text[index + opening:end]))
            index = end + opening
        else:
            index += 1
    return segments


_BOLD = re.compile(r"\*\*([^*\n:]{1,40}?)\*\*(?!\s*:)")
_NUMBER = re.compile(r"(?<![\w.\\^_])-?(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+|,\d{1,2}(?![\d,]))?"
                     r"(?:\s*/\s*\d+(?:\.\d+)?)?(?:\s*%)?|-?\\[dt]?frac\{-?\d+\}\{\d+\}")
_PROSE = re.compile(r"(?<![\\A-Za-z])(?:[A-Za-z]{3,}|is|of|to|in|it|so|we|be|as|at|by|an|if|on|my|no|do|he|up|us)"
                    r"(?![A-Za-z])")
_CONNECTORS = {"and", "or", "pct", "percent", "percentage", "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp",
               "max", "min", "gcd", "lcm", "det", "mod", "sqrt", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
               "inf", "infty", "pmod", "bmod"}
_NOT_ANSWERS = re.compile(r"^(?:not|correct|incorrect|wrong|right|valid|invalid|reasonable|consistent|confirmed|"
                          r"verified|as\s+follows|below|above|that|this|it|because|clear|obvious)\b", re.I)


def _prose_words(text: str) -> list[tuple[int, str]]:
    hidden = re.sub(r"\\(?:text|mbox|textbf|textit|mathrm|operatorname|mathbf|textnormal|end)\s*\{[^{}]*\}"
                    r"|\\begin\s*\{[^{}]*\}(?:\s*\{[^{}]*\})?"
                    r"|(?<=[\d)\]}])(?:and|or)(?=[A-Z(\[{\\\-\d])", lambda m: " " * len(m.group(0)), text)
    return [(m.start(), m.group(0)) for m in _PROSE.finditer(hidden)
            if m.group(0).lower() not in _CONNECTORS and not m.group(0).isupper()]   # ABCD, NO: names of points


def is_bare_answer(text: str) -> bool:
    """Whether ``text`` is an answer by itself: no prose, or only a short text, or words after the number."""
    stripped = text.strip()
    if not stripped or len(stripped) > 300 or BOXED.search(stripped) or stripped.count("{") != stripped.count("}"):
        return False
    words = _prose_words(stripped)
    if not words:
        return True
    if not re.search(r"\d", stripped):
        return len(words) <= 4 and not re.search(r"[.!?]\s+\S", stripped)
    last_digit = max(m.start() for m in re.finditer(r"\d", stripped))
    return len(words) <= 3 and all(position > last_digit for position, _ in words)


def clean(answer: str) -> str:
    """Strip what surrounds an answer: delimiters, quotes, markdown bold, a final period."""
    answer = answer.strip()
    for _ in range(3):
        answer = re.sub(r"^(?:\*\*|\\?[\"'`]|\\\[|\\\(|\$+)\s*|\s*(?:\*\*|\\?[\"'`]|\\\]|\\\)|\$+)$", "",
                        answer).strip()
        answer = re.sub(r"[\s.,;:]+$", "", answer) if not answer.endswith("\\.") else answer
    return answer.strip()


def _last_stated(text: str) -> Optional[tuple[int, str, str]]:
    """``(end, answer, strategy)``: the last math segment with content, or the last number, whichever ends later."""
    best = None
    for _start, end, content in math_segments(text):
        if re.search(r"\d|\\[A-Za-z]", content) or len(content.strip()) > 2:
            if not re.fullmatch(r"\s*[A-Za-z]{2,}\s*", content):  # "$ABCD$": a name, not an answer
                best = (end, clean(content), "last_math")
    last_number = None
    for last_number in _NUMBER.finditer(text):  # noqa: B007 - the loop keeps the last match
        pass
    if last_number and (best is None or last_number.end() > best[0]):
        best = (last_number.end(), last_number.group(0).replace(" ", ""), "last_number")
    offset = max(0, len(text) - 300)
    bold = _last_match(_BOLD, text[offset:])   # "The 100th day is a **Friday**."
    if bold and (best is None or offset + bold.end() > best[0]):
        best = (offset + bold.end(), clean(bold.group(1)), "last_math")
    return best


def _sentence(text: str) -> str:
    """The text up to the end of its sentence (". " or a line end outside math, braces and brackets)."""
    depth, math = 0, False
    for index, char in enumerate(text):
        if char == "$" and (index == 0 or text[index - 1] != "\\"):
            math = not math
        elif char in "{([":
            depth += 1
        elif char in "})]":
            depth = max(0, depth - 1)
        elif char == "\n" and not math:
            return text[:index]
        elif not math and depth == 0 and char == "." and (index + 1 == len(text) or text[index + 1] in " \n"):
            if not re.search(r"\d$", text[:index]) or index + 1 == len(text) or text[index + 1:index + 3].strip():
                return text[:index]
    return text


def refine(captured: str) -> Optional[str]:
    """The answer inside what a marker captured (see the module docstring)."""
    sentence = _sentence(captured[:MAX_ANSWER_CHARS].lstrip(" :*\n"))
    boxed = final_boxed(sentence)
    if boxed:
        return clean(boxed[1])
    sentence = re.split(r",?\s+(?:since|because|which|as|so|given|when|where|if)\s", sentence, maxsplit=1)[0]
    answer = clean(sentence)
    if not answer or _NOT_ANSWERS.match(answer):
        return None
    if is_bare_answer(answer):
        return answer
    stated = _last_stated(answer)
    return clean(stated[1]) if stated else answer


# ---------------------------------------------------------------- markers
_ANSWER_IS = re.compile(r"\b(?:final\s+answer|answer|correct\s+(?:option|choice))\s*(?:is|was|would\s+be|should\s+be|=)\s*:?"
                        r"|(?:^|(?<=\n))[\s*#>]*(?:final\s+)?answer\s*\**\s*[:\uff1a]|\bfinal\s+answer\s*\**\s*[:\uff1a]", re.I)
_ANSWER_HEADING = re.compile(r"^[\s#*]*(?:final\s+)?answer[\s*:]*$", re.I | re.M)
_HASH = re.compile(r"####\s*")


def _last_match(pattern: re.Pattern, text: str) -> Optional[re.Match]:
    last = None
    for last in pattern.finditer(text):  # noqa: B007 - the loop keeps the last match
        pass
    return last


def _markers(text: str, strategies: Sequence[str], answer_tags: Sequence[str]) -> list[tuple[int, str, str]]:
    """``(position, answer, strategy)`` of the last occurrence of each enabled marker."""
    found = []
    spans = [(start, end) for start, end, _ in boxes(text)]
    if "boxed" in strategies:
        boxed = final_boxed(text)
        if boxed:
            plain = re.sub(r"\\text\{([^{}]*)\}", r"\1", boxed[1])   # \boxed{\text{The answer is } 15}
            inner = refine(plain) if not is_bare_answer(plain) else clean(boxed[1])
            if inner:
                found.append((boxed[0], inner, "boxed"))
    if "tag" in strategies:
        opening, closing = answer_tags
        end = text.rfind(closing)
        start = text.rfind(opening, 0, end) if end >= 0 else -1
        if start >= 0:
            inner = refine(text[start + len(opening):end])
            if inner:
                found.append((start, inner, "tag"))
    for name, pattern in (("answer_is", _ANSWER_IS), ("hash", _HASH)):
        if name in strategies:
            for match in reversed(list(pattern.finditer(text))[-5:]):
                if any(start < match.start() < end for start, end in spans):
                    continue   # "\\boxed{The answer is 15}": the box holds it
                inner = refine(text[match.end():match.end() + MAX_ANSWER_CHARS])
                if inner:
                    found.append((match.start(), inner, name))
                    break
    if "answer_line" in strategies:
        heading = _last_match(_ANSWER_HEADING, text)
        if heading:
            following = text[heading.end():].lstrip("\n ")
            inner = refine(following.split("\n", 1)[0]) if following else None
            if inner:
                found.append((heading.start(), inner, "answer_line"))
    return found


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


_UNFINISHED = re.compile(r"(?:[,:;=+\-*/^({\[]|\\[A-Za-z]+|\b(?:the|a|an|and|or|but|by|from|of|to|with|for|in|on|at|"
                         r"as|is|are|was|be|that|which|then|we|so|since|because|if|let|this|these|it|its|our|"
                         r"their|not|than|into|minus|plus|times|over))\s*$", re.I)


def looks_unfinished(text: str) -> bool:
    """Whether a response was cut off: it stops mid-sentence (a connector, an operator, an open bracket, a
    lowercase word ending a sentence of four words or more) or inside an unclosed ``<think>`` section."""
    if "<think>" in text and "</think>" not in text:
        return True
    tail = text.rstrip().rstrip("*").rstrip()[-200:]
    if _UNFINISHED.search(tail):
        return True
    last_sentence = re.split(r"[.!?\n]", tail)[-1]
    if re.search(r"\d[\d,.]*\$?\s*(?:[A-Za-z]+\s*){0,2}$", tail):
        return False   # "... so 26 dollars", "she makes $18 every day": a number and its unit end it
    return bool(re.search(r"[a-z]$", tail)) and len(last_sentence.split()) >= 4


def extract_answer(generation: Optional[str], config: ExtractionConfig,
                   finished: bool = True) -> tuple[Optional[str], Optional[str]]:
    """``(answer, strategy)`` for one generation; ``(None, None)`` when nothing is found.

    A response that was cut off (``finished=False``, e.g. ``finish_reason: length``, or text that stops
    mid-sentence) gets no fallback: an unfinished response has not stated an answer.
    """
    text = answer_section(generation, config)
    if text is None or not text.strip():
        return None, None
    if "<think>" in text and "</think>" not in text:
        return None, None   # cut off while reasoning: a box in there is a guess, not an answer
    strategies = config.strategies
    markers = _markers(text, strategies, config.answer_tags)
    if markers:
        _, answer, strategy = max(markers, key=lambda found: found[0])
        return answer[:MAX_ANSWER_CHARS], strategy
    if "whole" in strategies and is_bare_answer(text):
        answer = clean(text)
        if answer:
            return answer[:MAX_ANSWER_CHARS], "whole"
    if not finished or looks_unfinished(text):
        return None, None
    stated = _last_stated(text)
    if stated and stated[2] in strategies:
        return stated[1][:MAX_ANSWER_CHARS], stated[2]
    if stated and "last_number" in strategies:
        number = _last_match(_NUMBER, text)
        if number:
            return number.group(0).replace(" ", ""), "last_number"
    return None, None


def gold_answer(expected: object) -> str:
    """The answer inside a gold text: itself when bare, else its last box(es) or its final statement."""
    text = str(expected)
    boxed = final_boxed(text, allow_unclosed=True)
    if boxed:
        return clean(boxed[1]) or text
    if is_bare_answer(text):
        return clean(text) or text
    answer, _ = extract_answer(text, ExtractionConfig())
    return answer if answer is not None else text


@functools.lru_cache(maxsize=8192)
def _parts(answer: str) -> int:
    """How many top-level parts (``3, 5`` has two) an answer has (cached: golds recur, e.g. in a GRPO group)."""
    from nemo_eval.evaluation.math_normalize import normalize_answer
    from nemo_eval.evaluation.math_structure import split_top_level

    return len([part for part in split_top_level(normalize_answer(answer), ",") if part])


def extract_for_gold(generation: Optional[str], gold: str, config: ExtractionConfig,
                     finished: bool = True) -> tuple[Optional[str], Optional[str]]:
    """:func:`extract_answer`, except that a question with a several-part gold (``3, 5``) answered in several
    boxes ("(a) ... \\boxed{3}. (b) ... \\boxed{5}") gets those boxes as one list."""
    answer, strategy = extract_answer(generation, config, finished)
    if strategy == "boxed" and answer is not None:
        wanted = _parts(gold)
        if wanted > 1 and _parts(answer) == 1:
            text = answer_section(generation, config) or ""
            joined = last_boxes(text, wanted)
            if joined:
                return joined, strategy
    return answer, strategy


def has_reasoning(line: dict, config: ExtractionConfig) -> Optional[bool]:
    """Whether the line has a closed reasoning section (None when the prompt asks for none)."""
    if not config.reasoning_tags:
        return None
    if line.get("reasoning"):
        return True
    generation = line.get("generation") or ""
    opening, closing = config.reasoning_tags
    return closing in generation and generation.find(opening) < generation.rfind(closing)
