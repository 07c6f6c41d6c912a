"""What every reward function shares: reading completions and gold columns, counting what could not be graded.

Trainers hand rewards a batch: TRL ``GRPOTrainer`` calls ``fn(prompts=..., completions=..., **columns)``
with completions as strings or as chat message lists (``[{"role": "assistant", "content": ...}]``) and
every other dataset column as a list with one value per completion. :func:`completion_text` and
:func:`column` turn those into plain strings.

An item that cannot be graded (its check timed out, failed, or the isolation could not run it) scores 0
and is counted: :class:`GradingStats` keeps the totals of a reward function, and :func:`warn_ungraded`
issues one warning per batch that had such items, with the counts. Nothing here raises on a bad item.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

GOLD_COLUMNS = ("answer", "expected_answer", "solution")
MAX_CHARS = 200_000   # a longer completion is not graded (scored 0, counted): extraction runs in our process
TOO_LONG = "too long"


class RewardWarning(UserWarning):
    """Warnings of the reward functions (items not graded, weaker isolation)."""


def completion_text(completion: Any) -> str:
    """The text of one completion: a string as is; a chat message list gives its assistant contents joined."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        parts = [message.get("content") or "" for message in completion
                 if isinstance(message, dict) and message.get("role", "assistant") == "assistant"]
        if not parts:
            parts = [message.get("content") or "" for message in completion if isinstance(message, dict)]
        return "".join(part if isinstance(part, str) else _content_text(part) for part in parts)
    return str(completion)


def _content_text(content: Any) -> str:
    """Text of a multi-part message content (``[{"type": "text", "text": ...}, ...]``)."""
    if isinstance(content, (list, tuple)):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return str(content)


def column(columns: dict[str, Any], names: Sequence[str], count: int, what: str) -> list[Any]:
    """The first of ``names`` present in ``columns`` (not None), as a list of ``count`` values.

    A single value (not a list) is repeated for every completion. Raises ``ValueError`` naming the
    columns it looked for when none is there: a missing gold column is a setup error, not a bad item.
    """
    for name in names:
        values = columns.get(name)
        if values is None:
            continue
        if isinstance(values, (str, bytes, int, float)) or not hasattr(values, "__len__"):
            return [values] * count
        values = list(values)
        if len(values) != count:
            raise ValueError(f"column {name!r} has {len(values)} values for {count} completions; pass one per completion")
        return values
    raise ValueError(f"no {what} column: pass one of {', '.join(names)} (got columns: {', '.join(sorted(columns)) or 'none'})")


@dataclass
class GradingStats:
    """Totals of one reward function since it was created (thread-safe)."""

    scored: int = 0
    ungraded: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, scored: int, ungraded: dict[str, int]) -> None:
        with self.lock:
            self.scored += scored
            for reason, count in ungraded.items():
                self.ungraded[reason] = self.ungraded.get(reason, 0) + count

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"scored": self.scored, "ungraded": dict(self.ungraded)}


def warn_ungraded(name: str, total: int, ungraded: dict[str, int], stats: Optional[GradingStats] = None) -> None:
    """Record a batch in ``stats``; warn once for it when some of its items could not be graded."""
    if stats is not None:
        stats.add(total, ungraded)
    count = sum(ungraded.values())
    if count:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(ungraded.items()))
        warnings.warn(f"nemo-eval {name}: {count} of {total} completions could not be graded ({reasons}); "
                      "they scored 0", RewardWarning, stacklevel=3)


class Once:
    """Issues a warning the first time only (per instance)."""

    def __init__(self) -> None:
        self.done = False
        self.lock = threading.Lock()

    def warn(self, message: str) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        warnings.warn(message, RewardWarning, stacklevel=3)
