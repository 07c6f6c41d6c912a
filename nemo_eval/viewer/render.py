"""Turning one graded line into what the sample page shows.

Everything here returns plain strings and lists; escaping is the templates' job (Jinja autoescape),
so model output is never marked safe anywhere in the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.metrics.compute import vote_key
from nemo_eval.prompts.builder import prompt_from_record


@dataclass
class Piece:
    """A stretch of a generation: ``text`` (plain), ``answer`` (the extracted answer), ``code`` or ``output``."""

    kind: str
    text: str


def answer_span(generation: str, predicted: Any,
                within: Optional[list[tuple[int, int]]] = None) -> Optional[tuple[int, int]]:
    """Where the extracted answer stands in the generation: its last verbatim occurrence (inside one of
    the ``within`` stretches when given; else anywhere), or None."""
    if predicted is None or not generation:
        return None
    stretches = within if within is not None else [(0, len(generation))]
    answer = str(predicted).strip()
    for candidate in dict.fromkeys((answer, answer.replace(",", "").replace(" ", ""))):
        if not candidate:
            continue
        for start, end in reversed(stretches):
            at = generation.rfind(candidate, start, end)
            if at >= 0:
                return at, at + len(candidate)
    return None


def _split_code(text: str, markers: Optional[dict[str, str]]) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` stretches of plain text, code blocks and interpreter outputs (marker-free),
    by the prompt config's code-execution markers."""
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
        position = close + len(markers[f"{kind}_end"])
    return spans


def generation_pieces(generation: Optional[str], predicted: Any,
                      code_markers: Optional[dict[str, str]] = None) -> tuple[list[Piece], bool]:
    """The generation cut into pieces with the extracted answer marked.

    Returns:
        The pieces, and whether the extracted answer was found in the text (False: the grader
        normalised it, e.g. dropped thousands separators, so it is shown apart only).
    """
    text = generation or ""
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


def prompt_as_sent(meta: dict[str, Any], row: dict[str, Any]) -> tuple[Optional[dict[str, Any]], str]:
    """The prompt a line was generated from, rebuilt from the prompt record in its file's meta.

    Returns:
        ``({"messages": [...], "text": str | None, "stop": [...]}, "")``, or ``(None, reason)``
        when the file predates prompt records or the record does not fit the line.
    """
    record = meta.get("prompt_record")
    if not isinstance(record, dict):
        return None, "not recorded: this file was generated before nemo-eval kept prompt records"
    try:
        prompt = prompt_from_record(record, row)
    except (UserError, KeyError, TypeError, ValueError) as exc:
        return None, f"cannot be rebuilt from the record ({exc})"
    return {"messages": prompt.messages, "text": prompt.text, "stop": prompt.stop}, ""


def majority_vote(rows: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The most frequent answer over seeds (answers grouped as compute-metrics groups them).

    Returns:
        ``{"answer", "votes", "total", "is_correct"}``, or None when no seed has an answer field.
    """
    if not rows or not all("predicted_answer" in row for row in rows):
        return None
    tally: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("predicted_answer") is not None:
            tally.setdefault(vote_key(row["predicted_answer"]), []).append(row)
    if not tally:
        return {"answer": None, "votes": 0, "total": len(rows), "is_correct": False, "tied": False}
    ranked = sorted(tally.values(), key=len, reverse=True)
    top = ranked[0]
    tied = len(ranked) > 1 and len(ranked[1]) == len(top)
    return {"answer": top[0]["predicted_answer"], "votes": len(top), "total": len(rows),
            "is_correct": bool(top[0].get("is_correct")), "tied": tied}
