"""A content-addressed cache of server responses, safe for concurrent runs.

A request is identified by its endpoint (base URL and path), model and exact JSON body (sampling
settings and seed included): ``sha256`` of those is the key, and the server's raw answer is stored
as ``<cache_dir>/<key[:2]>/<key>.json``. Entries are written to a temporary file and renamed into
place, so a reader never sees half an entry and two runs writing one key at once both leave a whole
one; nothing is locked, so any number of runs can share a cache directory (no "database is locked").
Only complete, parseable answers are stored; failures are not.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Optional

from nemo_eval.errors import UserError


class ResponseCache:
    """Responses by request.

    Args:
        directory: Where entries live (created when missing).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the response cache {directory}: {exc.strerror}; choose another "
                            "++cache_dir") from None
        self.hits = 0
        self.stores = 0

    @staticmethod
    def key(url: str, body: bytes) -> str:
        """The cache key of a POST of ``body`` to ``url`` (the body names the model)."""
        digest = hashlib.sha256()
        digest.update(url.encode("utf-8") + b"\x00")
        digest.update(body)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[bytes]:
        """The stored answer, or None."""
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        self.hits += 1
        return data

    def put(self, key: str, answer: bytes) -> None:
        """Store an answer (a failure to write is not an error: the run goes on uncached)."""
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            path.parent.mkdir(exist_ok=True)
            temporary.write_bytes(answer)
            os.replace(temporary, path)
            self.stores += 1
        except OSError:
            temporary.unlink(missing_ok=True)
