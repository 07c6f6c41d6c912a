"""Getting raw benchmark files: from a mirror or the canonical URL, always checksum-verified.

With ``NEMO_EVAL_DATA_MIRROR`` set (a directory, or an ``http(s)://`` base URL) a raw file is
read from ``<mirror>/<benchmark>/<original file name>`` first; otherwise, or when the mirror
lacks it, from the canonical URL and then its alternates. A ``url`` (or alternate) in a
benchmark.yaml may be ``http(s)://``, ``file:///absolute/path`` or a plain local path (``~`` is
expanded). Bytes are streamed to a temporary file next to the destination while hashing; a checksum
mismatch deletes it and refuses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from nemo_eval import __version__
from nemo_eval.datasets.spec import RawFile
from nemo_eval.errors import UserError
from nemo_eval.jsonl import create_new, temporary_name

MIRROR_ENV = "NEMO_EVAL_DATA_MIRROR"
DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


def git_blob_sha1(path: Path) -> str:
    """The id git gives a file's content: sha1 of ``b"blob <size>\\0" + content``."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_problem(path: Path, raw: RawFile) -> str | None:
    """None when ``path`` matches the declared checksum(s), else a description of the mismatch."""
    if raw.sha256:
        actual = file_sha256(path)
        if actual != raw.sha256:
            return f"sha256 {actual} != expected {raw.sha256}"
    if raw.git_blob_sha1:
        actual = git_blob_sha1(path)
        if actual != raw.git_blob_sha1:
            return f"git blob sha1 {actual} != expected {raw.git_blob_sha1}"
    return None


def _mirror_source(mirror: str, benchmark: str, name: str) -> str:
    if mirror.startswith(("http://", "https://")):
        return f"{mirror.rstrip('/')}/{benchmark}/{name}"
    return str(Path(mirror).expanduser() / benchmark / name)


def _is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def local_path(source: str) -> Path:
    """The file a ``file://`` URL or a plain path names (a ``file://`` URL must name an absolute path)."""
    if source.startswith("file:"):
        parsed = urllib.parse.urlparse(source)
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise UserError(f"{source} is not a local file URL; write file:///absolute/path (three slashes)")
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(source).expanduser()


def _open_source(source: str) -> BinaryIO:
    if _is_remote(source):
        request = urllib.request.Request(source, headers={"User-Agent": f"nemo-eval/{__version__}"})
        return urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)  # noqa: S310 (http/https only)
    return open(local_path(source), "rb")


def _copy_to(source: str, target: Path) -> None:
    with _open_source(source) as stream, open(target, "wb") as out:
        shutil.copyfileobj(stream, out, _CHUNK)


def _describe(exc: BaseException, from_mirror: bool) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    if isinstance(exc, FileNotFoundError):
        return "not in the mirror" if from_mirror else "no such file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def fetch_raw_file(benchmark: str, raw: RawFile, dest: Path, mirror: str | None = None) -> str:
    """Put the verified raw file at ``dest``; return where it came from.

    Args:
        benchmark: Benchmark name (the mirror sub-folder).
        raw: The raw file's declaration.
        dest: Destination path; written only when the checksum matches.
        mirror: Mirror directory or base URL; defaults to ``$NEMO_EVAL_DATA_MIRROR``.

    Raises:
        UserError: No source could be read, or the bytes do not match the checksum.
    """
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    mirrored = [_mirror_source(mirror, benchmark, raw.name)] if mirror else []
    sources = mirrored + [raw.url, *raw.alt_urls]
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for source in sources:
        tmp = temporary_name(dest, ".part")
        os.close(create_new(tmp))  # the user's umask, like every other file we write
        try:
            _copy_to(source, tmp)
            problem = checksum_problem(tmp, raw)
            if problem:
                raise UserError(
                    f"checksum mismatch for {benchmark}/{raw.name} from {source}: {problem}; refusing it and "
                    "keeping nothing (the file is corrupt or changed upstream: re-download it, or update "
                    f"{benchmark}'s benchmark.yaml only if you trust the new file)")
            os.replace(tmp, dest)
            return source
        except (OSError, urllib.error.URLError, ValueError) as exc:
            failures.append(f"{source}: {_describe(exc, source in mirrored)}")
        finally:
            tmp.unlink(missing_ok=True)
    hint = (f"no network? set {MIRROR_ENV} to a directory or URL laid out as <benchmark>/<file name> "
            "(for example a copy of the shared datasets mirror)")
    if not any(_is_remote(source) for source in sources):
        hint = f"fix the path in {benchmark}'s benchmark.yaml (file:///absolute/path or a plain path)"
    elif mirror:
        hint = f"check that {MIRROR_ENV}={mirror} holds {benchmark}/{raw.name}, or that the network is reachable"
    raise UserError(f"cannot get {benchmark}/{raw.name}: tried {'; '.join(failures)}. {hint}")
