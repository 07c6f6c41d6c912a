"""JSON Lines reading and atomic file writing shared by every stage.

Files are created with the user's umask (like any other program's files: on a shared cluster file
system teammates can read them when the umask allows), never with a private mode of our own.
"""

from __future__ import annotations

import json
import os
import secrets
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
    check_readable_file(Path(path))
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path}:{number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                                f"{exc.start + 1}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number} is not valid JSON ({exc.msg}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number} is not a JSON object; each line must be one")
            yield row


def check_readable_file(path: Path, what: str = "file") -> None:
    """A one-line UserError when ``path`` is missing, a directory, or not readable."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory; give the path of a JSONL file")
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path} is not readable by you (check its permissions)")


def make_dir(path: Path, what: str = "output dir") -> None:
    """Create a directory (and its parents), or a one-line UserError saying what is in the way."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a directory; give a directory path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{what} {path}: a part of the path is a file, not a directory") from None
    except OSError as exc:
        raise UserError(f"cannot create {what} {path}: {exc.strerror}; choose a directory you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} is not writable by you; choose a directory you can write to")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and rename: readers never see half a file."""
    atomic_write_lines(path, [text])


def create_new(path: Path) -> int:
    """Create ``path`` exclusively, mode 0666 minus the umask (what ``open(path, "w")`` gives); an fd."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)


def temporary_name(target: Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique name next to ``target`` (same file system, so a rename is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def atomic_write_lines(path: str | os.PathLike, chunks: Iterable[str]) -> None:
    """Write the concatenated ``chunks`` atomically (temporary file in the same folder, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    fd = create_new(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON Lines atomically (UTF-8, one object per line)."""
    atomic_write_lines(path, (encode_json(row) + "\n" for row in rows))
