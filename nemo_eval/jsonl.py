"""JSON Lines reading and atomic file writing shared by every stage."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from nemo_eval.errors import UserError

# json.dumps(..., ensure_ascii=False) builds a new encoder per call; hot paths share this one.
_encode_utf8 = json.JSONEncoder(ensure_ascii=False).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True).encode


def encode_json(value: Any) -> str:
    """JSON text that is always valid UTF-8: lone surrogates (possible in model output) are escaped."""
    text = _encode_utf8(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _encode_ascii(value)
    return text


def read_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line; a bad line raises UserError naming file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number} is not valid JSON ({exc.msg}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number} is not a JSON object; each line must be one")
            yield row


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and rename: readers never see half a file."""
    atomic_write_lines(path, [text])


def atomic_write_lines(path: str | os.PathLike, chunks: Iterable[str]) -> None:
    """Write the concatenated ``chunks`` atomically (temporary file in the same folder, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON Lines atomically (UTF-8, one object per line)."""
    atomic_write_lines(path, (encode_json(row) + "\n" for row in rows))
