"""Turning one graded line into what the sample page shows.

Everything here returns plain strings and lists; escaping is the templates' job (Jinja autoescape),
so model output is never marked safe anywhere in the viewer.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.metrics.compute import vote_key
from nemo_eval.metrics.estimators import majority_credit
from nemo_eval.prompts.builder import prompt_from_record
from nemo_eval.viewer.samples import text_of


@dataclass
class Piece:
    """A stretch of a generation: ``text`` (plain), ``answer`` (the extracted answer), ``code`` or ``output``."""

    kind: str
    text: str


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is not part of a longer number or word (``5`` inside ``25`` is not the answer)."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if text[start:end][:1].isalnum() and before.isalnum():
        return False
    if text[start:end][-1:].isalnum() and after.isalnum():
        return False
    if after in ".," and end + 1 < len(text) and text[end + 1].isdigit():
        return False  # 5 in 5.25 or 5,000
    return not (before in ".," and start >= 2 and text[start - 2].isdigit())  # 5 in 3.5 or 1,5


def answer_span(generation: str, predicted: Any,
                within: Optional[list[tuple[int, int]]] = None) -> Optional[tuple[int, int]]:
    """Where the extracted answer stands in the generation: the last ``\\boxed{answer}``, else its last
    occurrence that is not part of a longer number or word (inside one of the ``within`` stretches when
    given; else anywhere), or None."""
    if predicted is None or not generation:
        return None
    stretches = within if within is not None else [(0, len(generation))]
    answer = text_of(predicted).strip()
    for candidate in dict.fromkeys((answer, answer.replace(",", "").replace(" ", ""))):
        if not candidate:
            continue
        for start, end in reversed(stretches):
            boxed = generation.rfind("\\boxed{" + candidate + "}", start, end)
            if boxed >= 0:
                return boxed + 7, boxed + 7 + len(candidate)
        for start, end in reversed(stretches):
            at = generation.rfind(candidate, start, end)
            while at >= 0 and not _bounded(generation, at, at + len(candidate)):
                at = generation.rfind(candidate, start, at + len(candidate) - 1)
            if at >= 0:
                return at, at + len(candidate)
    return None


def _markers(value: Any) -> Optional[dict[str, str]]:
    """Code-execution markers from a prompt record, when they are usable (all four non-empty strings)."""
    if not isinstance(value, dict):
        return None
    keys = ("code_begin", "code_end", "output_begin", "output_end")
    if not all(isinstance(value.get(k), str) and value[k] for k in keys):
        return None
    return {k: value[k] for k in keys}


def _split_code(text: str, markers: Optional[dict[str, str]]) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` stretches of plain text, code blocks and interpreter outputs (marker-free),
    by the prompt config's code-execution markers."""
    markers = _markers(markers)
    if not markers:
        return [("text", 0, len(text))] if text else []
    spans: list[tuple[str, int, int]] = []
    position = 0
    while position < len(text):
        found = [(at, kind) for kind in ("code", "output")
                 if (at := text.find(markers[f"{kind}_begin"], position)) >= 0]
        if not found:
            spans.append(("text", position, len(text)))
            break
        at, kind = min(found)
        if at > position:
            spans.append(("text", position, at))
        body = at + len(markers[f"{kind}_begin"])
        close = text.find(markers[f"{kind}_end"], body)
        if close < 0:
            spans.append((kind, body, len(text)))
            break
        spans.append((kind, body, close))
        position = close + len(markers[f"{kind}_end"])  # markers are non-empty: always moves on
    return spans


def generation_pieces(generation: Optional[str], predicted: Any,
                      code_markers: Optional[dict[str, str]] = None) -> tuple[list[Piece], bool]:
    """The generation cut into pieces with the extracted answer marked.

    Returns:
        The pieces, and whether the extracted answer was found in the text outside code blocks (False:
        e.g. the grader normalised it, dropping thousands separators, so it is shown apart only).
    """
    text = text_of(generation)
    spans = _split_code(text, code_markers)
    span = answer_span(text, predicted, [(start, end) for kind, start, end in spans if kind == "text"])
    pieces: list[Piece] = []
    marked = False
    for kind, start, end in spans:
        if kind == "text" and span is not None and start <= span[0] and span[1] <= end:
            for part_kind, a, b in (("text", start, span[0]), ("answer", span[0], span[1]), ("text", span[1], end)):
                if b > a:
                    pieces.append(Piece(part_kind, text[a:b]))
            marked = True
        else:
            pieces.append(Piece(kind, text[start:end]))
    return pieces, marked


def _safe_template(template: Any) -> bool:
    """A template from a meta file is filled only when its fields are plain names with no format spec that
    could blow the output up (``{problem:>999999999}``) or reach attributes (``{problem.__class__}``)."""
    if template is None:
        return True
    if not isinstance(template, str):
        return False
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return False
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            return False
    return True


def prompt_as_sent(meta: dict[str, Any], row: dict[str, Any]) -> tuple[Optional[dict[str, Any]], str]:
    """The prompt a line was generated from, rebuilt from the prompt record in its file's meta.

    Returns:
        ``({"messages": [...], "text": str | None, "stop": [...]}, "")``, or ``(None, reason)``
        when the file predates prompt records or the record does not fit the line.
    """
    record = meta.get("prompt_record")
    if record is None:
        return None, "not recorded: this file was generated before nemo-eval kept prompt records"
    if not isinstance(record, dict) or not all(_safe_template(record.get(k)) for k in ("system", "user")):
        return None, "the prompt record in the meta file is malformed"
    examples = None
    if record.get("examples_per_item"):
        examples = row.get("prompt_examples")
        if not isinstance(examples, str):
            return None, "the few-shot examples were drawn for each item and this line does not record them"
    try:
        prompt = prompt_from_record(record, row, examples)
    except (UserError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return None, f"cannot be rebuilt from the record ({exc})"
    return {"messages": prompt.messages, "text": prompt.text, "stop": prompt.stop}, ""


def majority_vote(rows: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The majority vote over seeds, as ``majority@k`` scores it (answers grouped as compute-metrics groups
    them; a tie gives the share of the tied answers that are right).

    Returns:
        ``{"answers": [tied top answers], "votes", "total", "credit"}``, or None when a seed has no answer field.
    """
    if not rows or not all("predicted_answer" in row for row in rows):
        return None
    keys = [vote_key(row["predicted_answer"]) for row in rows]
    credit = majority_credit(keys, [bool(row.get("is_correct")) for row in rows])
    tally: dict[Any, list[dict[str, Any]]] = {}
    for key, row in zip(keys, rows):
        if key is not None:
            tally.setdefault(key, []).append(row)
    top = max((len(group) for group in tally.values()), default=0)
    answers = [text_of(group[0]["predicted_answer"]) for group in tally.values() if len(group) == top] if top else []
    return {"answers": answers, "votes": top, "total": len(rows), "credit": credit}
