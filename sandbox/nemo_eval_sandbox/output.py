"""Capped capture of a program's stdout/stderr: the head and the tail are kept, the middle dropped."""

from __future__ import annotations


class CappedReader:
    """Keeps the first and the last ``cap/2`` characters' worth of bytes; counts (and drops) the rest.

    The tail matters: tracebacks end stderr, and graders look for a marker at the end of stdout.
    """

    def __init__(self, cap_chars: int) -> None:
        self.cap_chars = cap_chars
        self.half_bytes = max(1, cap_chars // 2) * 4  # enough bytes for cap/2 characters of any UTF-8
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half_bytes - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.half_bytes:
                del self.tail[: len(self.tail) - self.half_bytes]

    def text(self) -> tuple[str, bool]:
        """The captured text (invalid UTF-8 replaced) and whether anything was cut."""
        cap = self.cap_chars
        if self.total == len(self.head) + len(self.tail):  # nothing was dropped: cut the decoded text
            whole = (self.head + self.tail).decode("utf-8", errors="replace")
            if len(whole) <= cap:
                return whole, False
            return whole[: cap // 2] + whole[len(whole) - (cap - cap // 2):], True
        head = self.head.decode("utf-8", errors="replace")[: cap // 2]
        tail = self.tail.decode("utf-8", errors="replace")
        return head + tail[len(tail) - (cap - len(head)):], True
