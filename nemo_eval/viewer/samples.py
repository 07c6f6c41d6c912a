"""Sample tables: one generation file loaded once into an index that pages, filters and searches fast.

Each line gets its status tags (what the filter buttons select) and a lower-cased search text
(problem + generation). The index is cached per file and rebuilt when the file's size or
modification time changes, so a run in progress shows its new lines on the next request. Lines
of a ``.partial`` file (generation still running) are shown in input order.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

STATUSES = {  # filter name -> label shown on its button
    "correct": "correct",
    "wrong": "wrong",
    "no_answer": "no answer",
    "truncated": "truncated",
    "error": "generation error",
    "grading_error": "grading error",
    "ungraded": "not graded",
}
PREVIEW_CHARS = 160
MAX_CACHED_BYTES = 2 * 1024**3  # indexes of files up to this size in all are kept


def _has_answer(row: dict[str, Any]) -> bool:
    if "predicted_answer" in row:
        return row["predicted_answer"] is not None and str(row["predicted_answer"]).strip() != ""
    return bool(str(row.get("generation") or "").strip())


def status_tags(row: dict[str, Any]) -> tuple[str, ...]:
    """The filters a line belongs to (a truncated wrong answer is both ``truncated`` and ``wrong``)."""
    tags = []
    if row.get("error") or row.get("finish_reason") == "error":
        tags.append("error")
    if "is_correct" not in row:
        tags.append("ungraded")
    elif row["is_correct"]:
        tags.append("correct")
    else:
        tags.append("wrong")
    if not _has_answer(row):
        tags.append("no_answer")
    if row.get("finish_reason") == "length":
        tags.append("truncated")
    if row.get("grading_error"):
        tags.append("grading_error")
    return tuple(tags)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _problem(row: dict[str, Any]) -> str:
    for key in ("problem", "question", "prompt"):
        if key in row:
            return _text(row[key])
    return ""


@dataclass
class SampleSummary:
    """What a row of the samples table shows."""

    position: int  # the line's place in input order (0-based)
    id: str
    tags: tuple[str, ...]
    problem: str
    predicted: str
    expected: str
    tokens: Any
    finish_reason: str


class SampleIndex:
    """The lines of one generation file, ready to page, filter and search."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.summaries: list[SampleSummary] = []
        self.search_text: list[str] = []
        self.by_id: dict[str, int] = {}
        self.offsets: list[int] = []  # byte offset of each line, to read one whole row back
        self.bad_lines = 0
        self._load()

    def _load(self) -> None:
        partial = self.path.name.endswith(".partial")
        entries: list[tuple[int, int, dict[str, Any]]] = []
        with open(self.path, "rb") as handle:
            offset = 0
            for number, raw in enumerate(handle):
                start, offset = offset, offset + len(raw)
                if not raw.endswith(b"\n") and partial:
                    break  # a line still being written
                try:
                    row = json.loads(raw)
                except ValueError:
                    self.bad_lines += raw.strip() != b""
                    continue
                if not isinstance(row, dict):
                    self.bad_lines += 1
                    continue
                order = row.get("_index", number) if partial else number
                entries.append((order if isinstance(order, int) else number, start, row))
        if partial:
            entries.sort(key=lambda entry: entry[0])
        for position, (_, start, row) in enumerate(entries):
            key = str(row.get("id", position))
            generation = _text(row.get("generation"))
            problem = _problem(row)
            self.summaries.append(SampleSummary(
                position=position, id=key, tags=status_tags(row), problem=problem[:PREVIEW_CHARS],
                predicted=_text(row.get("predicted_answer"))[:PREVIEW_CHARS],
                expected=_text(row.get("expected_answer"))[:PREVIEW_CHARS],
                tokens=row.get("num_generated_tokens"), finish_reason=_text(row.get("finish_reason"))))
            self.search_text.append(f"{problem}\n{generation}".casefold())
            self.by_id.setdefault(key, position)
            self.offsets.append(start)

    def counts(self) -> dict[str, int]:
        """Lines per status filter (plus ``all``)."""
        counts = {name: 0 for name in STATUSES}
        for summary in self.summaries:
            for tag in summary.tags:
                counts[tag] += 1
        counts["all"] = len(self.summaries)
        return counts

    def query(self, status: str = "", text: str = "", page: int = 1, per_page: int = 50
              ) -> tuple[list[SampleSummary], int]:
        """One page of the lines matching ``status`` (a key of STATUSES, or '' for all) and ``text``.

        Returns:
            The page's summaries and the number of matching lines.
        """
        needle = text.casefold().strip()
        matched = [s for s, haystack in zip(self.summaries, self.search_text)
                   if (not status or status in s.tags) and (not needle or needle in haystack)]
        start = (max(page, 1) - 1) * per_page
        return matched[start:start + per_page], len(matched)

    def row(self, item_id: str) -> Optional[dict[str, Any]]:
        """The whole line of item ``item_id``, read back from the file."""
        position = self.by_id.get(item_id)
        if position is None:
            return None
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[position])
            try:
                row = json.loads(handle.readline())
            except ValueError:
                row = None
        if not isinstance(row, dict) or str(row.get("id", position)) != item_id:
            return None  # the file was replaced since it was indexed; the next request reindexes it
        row.pop("_index", None)
        return row


class SampleCache:
    """Indexes of recently used files, each rebuilt when its file changes.

    Memory is bounded by the total size of the indexed files (an index takes about its file's size);
    the least recently used go first. Two requests for a file being indexed wait for one build.
    """

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, tuple[tuple[int, int], SampleIndex]] = OrderedDict()
        self._building: dict[tuple[Path, tuple[int, int]], threading.Event] = {}

    def cached(self, path: Path) -> bool:
        """Whether an index of the file as it is now is at hand."""
        try:
            stat = path.stat()
        except OSError:
            return False
        with self._lock:
            entry = self._entries.get(path)
            return entry is not None and entry[0] == (stat.st_size, stat.st_mtime_ns)

    def get(self, path: Path) -> SampleIndex:
        """The index of ``path`` as it is now (built here, or by the request already building it)."""
        while True:
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
            with self._lock:
                cached = self._entries.get(path)
                if cached and cached[0] == stamp:
                    self._entries.move_to_end(path)
                    return cached[1]
                pending = self._building.get((path, stamp))
                if pending is None:
                    done = self._building[(path, stamp)] = threading.Event()
                    break
            pending.wait()
        try:
            index = SampleIndex(path)  # built outside the lock: other files stay servable meanwhile
            with self._lock:
                self._entries[path] = (stamp, index)
                self._entries.move_to_end(path)
                total = sum(entry[0][0] for entry in self._entries.values())
                while total > self._max_bytes and len(self._entries) > 1:
                    total -= self._entries.popitem(last=False)[1][0][0]
            return index
        finally:
            with self._lock:
                self._building.pop((path, stamp), None)
            done.set()
