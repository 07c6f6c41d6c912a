"""Sample tables: one generation file loaded once into an index that pages, filters and searches fast.

Each line gets its status tags (what the filter buttons select) and a lower-cased search text
(problem + generation). The index of a file is cached and kept while the file is unchanged; when a
file only grew (the ``.partial`` file of a run in progress), just the new lines are read.

A file's lines are those of its finished form, overlaid by those of its ``.partial`` form (a run in
progress, or a rerun retrying the failed lines of a finished file): a line of the partial file replaces
the finished line at its ``_index``, and a later line with the same ``_index`` replaces an earlier one.
Lines are shown in input order.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

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
MEMORY_PER_FILE_BYTE = 3  # an index takes about three times its file's size in memory (measured)
MAX_CACHED_BYTES = 2 * 1024**3  # memory the indexes may take in all (least recently used dropped first)


def _has_answer(row: dict[str, Any]) -> bool:
    """As compute-metrics counts it: a ``predicted_answer`` that is not null, or (code) a non-empty generation."""
    if "predicted_answer" in row:
        return row["predicted_answer"] is not None
    return bool(text_of(row.get("generation")).strip())


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


def text_of(value: Any) -> str:
    """A field as text: strings as they are, anything else as JSON (fields come from disk: any type)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _problem(row: dict[str, Any]) -> str:
    for key in ("problem", "question", "prompt"):
        if key in row:
            return text_of(row[key])
    return ""


@dataclass
class SampleSummary:
    """What a row of the samples table shows."""

    position: int  # the line's place in input order (0-based), also its number in links
    id: str
    tags: tuple[str, ...]
    problem: str
    predicted: str
    expected: str
    tokens: Any
    finish_reason: str


@dataclass
class _Line:
    order: int
    source: int  # which file (0: finished, 1: partial)
    offset: int
    summary: SampleSummary
    search: str


class SampleIndex:
    """The lines of one output (finished file and/or partial file), ready to page, filter and search.

    Args:
        paths: The finished file and/or the partial file (``.partial``), in that order.
        opener: Opens a file for binary reading (the catalog's, which refuses files outside the served dirs).
    """

    def __init__(self, paths: list[Path], opener: Callable[[Path], Any] = lambda path: open(path, "rb")) -> None:
        self.paths = paths
        self._open = opener
        self._lines: dict[int, _Line] = {}
        self._consumed = [0] * len(paths)  # bytes read of each file
        self.bad_lines = 0
        self.summaries: list[SampleSummary] = []
        self.search_text: list[str] = []
        self.positions_by_id: dict[str, list[int]] = {}
        self._order: list[_Line] = []
        for source in range(len(paths)):
            self._read(source)
        self._arrange()

    def grew(self, sizes: list[int]) -> bool:
        """Read the lines added since the last read when only the partial file grew; False when the index
        must be rebuilt (no partial file, the finished file changed, or a file shrank)."""
        last = len(self.paths) - 1
        if len(sizes) != len(self.paths) or not self.paths[last].name.endswith(".partial") \
                or sizes[last] < self._consumed[last] or sizes[:last] != self._consumed[:last]:
            return False
        self._read(last)
        self._arrange()
        return True

    def _read(self, source: int) -> None:
        path = self.paths[source]
        partial = path.name.endswith(".partial")
        with self._open(path) as handle:
            handle.seek(self._consumed[source])
            offset = self._consumed[source]
            number = len(self._lines) if not partial else 0
            for raw in handle:
                if not raw.endswith(b"\n"):
                    if partial:
                        break  # a line still being written: read it next time
                start, offset = offset, offset + len(raw)
                row = _parse(raw)
                if row is None:
                    self.bad_lines += raw.strip() != b""
                    continue
                index = row.get("_index") if partial else None
                order = index if isinstance(index, int) and not isinstance(index, bool) else number
                number += not partial
                self._lines[order] = _Line(order, source, start, _summary(row, order), _search(row))
            self._consumed[source] = offset

    def _arrange(self) -> None:
        self._order = [self._lines[key] for key in sorted(self._lines)]
        self.summaries, self.search_text, self.positions_by_id = [], [], {}
        for position, line in enumerate(self._order):
            line.summary.position = position
            self.summaries.append(line.summary)
            self.search_text.append(line.search)
            self.positions_by_id.setdefault(line.summary.id, []).append(position)

    @property
    def duplicate_ids(self) -> int:
        return sum(len(positions) - 1 for positions in self.positions_by_id.values())

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

    def row(self, item_id: str, position: Optional[int] = None) -> Optional[dict[str, Any]]:
        """The whole line of item ``item_id`` (the one at ``position`` when several lines share the id)."""
        positions = self.positions_by_id.get(item_id, [])
        if not positions:
            return None
        chosen = position if position in positions else positions[0]
        line = self._order[chosen]
        with self._open(self.paths[line.source]) as handle:
            handle.seek(line.offset)
            row = _parse(handle.readline())
        if row is None or text_of(row.get("id", "")) != item_id and "id" in row:
            return None  # the file was replaced since it was indexed; the next request reindexes it
        row.pop("_index", None)
        return row


def _parse(raw: bytes) -> Optional[dict[str, Any]]:
    try:
        row = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return row if isinstance(row, dict) else None


def _summary(row: dict[str, Any], order: int) -> SampleSummary:
    return SampleSummary(
        position=0, id=text_of(row.get("id")) if "id" in row else str(order), tags=status_tags(row),
        problem=_problem(row)[:PREVIEW_CHARS], predicted=text_of(row.get("predicted_answer"))[:PREVIEW_CHARS],
        expected=text_of(row.get("expected_answer"))[:PREVIEW_CHARS], tokens=row.get("num_generated_tokens"),
        finish_reason=text_of(row.get("finish_reason")))


def _search(row: dict[str, Any]) -> str:
    return f"{_problem(row)}\n{text_of(row.get('generation'))}".casefold()


class SampleCache:
    """Indexes of recently used outputs, each kept while its files are unchanged (extended when they grew).

    Memory is bounded (:data:`MAX_CACHED_BYTES`, counting :data:`MEMORY_PER_FILE_BYTE` per file byte); the
    least recently used go first. Two requests for an output being indexed wait for one build.

    Args:
        opener: Opens a file for binary reading (the catalog's guarded open).
        max_bytes: The memory budget.
    """

    def __init__(self, opener: Callable[[Path], Any] = lambda path: open(path, "rb"),
                 max_bytes: int = MAX_CACHED_BYTES) -> None:
        self._open = opener
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Path, ...], tuple[tuple, SampleIndex]] = OrderedDict()
        self._building: dict[tuple[Path, ...], threading.Event] = {}

    @staticmethod
    def _stamp(paths: list[Path]) -> tuple:
        stats = [path.stat() for path in paths]
        return tuple((stat.st_size, stat.st_mtime_ns, stat.st_ino) for stat in stats)

    def cached(self, paths: list[Path]) -> bool:
        """Whether an index of the files as they are now is at hand."""
        try:
            stamp = self._stamp(paths)
        except OSError:
            return False
        with self._lock:
            entry = self._entries.get(tuple(paths))
            return entry is not None and entry[0] == stamp

    def get(self, paths: list[Path]) -> SampleIndex:
        """The index of an output's files as they are now (built here, or by the request already building it).

        Raises:
            OSError: a file vanished (a run finished meanwhile) or leads outside the served dirs.
        """
        key = tuple(paths)
        while True:
            stamp = self._stamp(paths)
            with self._lock:
                cached = self._entries.get(key)
                if cached and cached[0] == stamp:
                    self._entries.move_to_end(key)
                    return cached[1]
                pending = self._building.get(key)
                if pending is None:
                    done = self._building[key] = threading.Event()
                    break
            pending.wait()
        try:
            index = None
            if cached and all(old[2] == new[2] for old, new in zip(cached[0], stamp)) and len(cached[0]) == len(stamp) \
                    and cached[1].grew([size for size, _, _ in stamp]):
                index = cached[1]  # only new lines were read
            if index is None:
                index = SampleIndex(paths, self._open)  # built outside the lock: other files stay servable
            with self._lock:
                self._entries[key] = (stamp, index)
                self._entries.move_to_end(key)
                weight = lambda entry: MEMORY_PER_FILE_BYTE * sum(size for size, _, _ in entry[0])  # noqa: E731
                total = sum(weight(entry) for entry in self._entries.values())
                while total > self._max_bytes and len(self._entries) > 1:
                    total -= weight(self._entries.popitem(last=False)[1])
            return index
        finally:
            with self._lock:
                self._building.pop(key, None)
            done.set()
