"""Generation output that survives being killed: append-as-you-go, resume, finish in order.

Files, for an output ``out.jsonl``:

- ``out.jsonl.partial`` — one line per finished request, appended and flushed as each completes
  (each line carries its input position in ``_index``). A ``kill -9`` loses at most the request
  in flight; a torn last line is cut off on restart.
- ``out.jsonl.meta.json`` — the settings the lines were made with. A restart with different
  settings (model, prompt, sampling, input) is refused, or with ``overwrite`` starts afresh. Next to
  them, a record that is not compared: the prompt record (what turns an item into the exact prompt
  sent), the server, and when the file was last written.
- ``out.jsonl`` — written atomically in input order once every item has a line; the partial
  file is then removed. Lines with an ``error`` are kept but count as not done, so running the
  same command again retries exactly those.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional, TextIO

from nemo_eval.errors import UserError
from nemo_eval.jsonl import atomic_write_text, encode_json, read_jsonl, write_jsonl_atomic
from nemo_eval.run_layout import meta_path

INDEX_KEY = "_index"


class ResumableOutput:
    """The output of one generation run.

    Args:
        path: Final output file.
        settings: Everything that makes a line valid (JSON-serialisable); compared on resume.
        overwrite: Discard existing output made with other settings instead of refusing.
        record: Written to the meta file next to the settings but not compared on resume (e.g. the
            prompt record and server of the run that wrote it last).
    """

    def __init__(self, path: Path, settings: dict[str, Any], overwrite: bool = False,
                 record: Optional[dict[str, Any]] = None) -> None:
        self.path = path
        self.partial_path = path.with_name(path.name + ".partial")
        self.meta_path = meta_path(path)
        self.settings = json.loads(json.dumps(settings))  # normalise (tuples -> lists, ...)
        self.overwrite = overwrite
        self.record = json.loads(json.dumps(record or {}))
        self.resolved_model: Optional[str] = None
        self._previous_model: Optional[str] = None
        self._has_rows = False
        self._handle: Optional[TextIO] = None

    def _existing(self) -> list[Path]:
        return [p for p in (self.path, self.partial_path) if p.exists()]

    def _check_settings(self) -> None:
        existing = self._existing()
        if not existing:
            return
        meta: Any = None
        corrupt = False
        if self.meta_path.exists():
            try:
                meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError):
                corrupt = True
            corrupt = corrupt or not isinstance(meta, dict) or not isinstance(meta.get("settings"), dict)
        previous = meta.get("settings") if isinstance(meta, dict) and not corrupt else None
        if previous == self.settings:
            self._previous_model = meta.get("resolved_model")
            return
        if self.overwrite:
            for path in existing + [self.meta_path]:
                path.unlink(missing_ok=True)
            return
        if corrupt:
            raise UserError(f"{self.meta_path} is corrupt (not the JSON record nemo-eval writes), so {existing[0]} "
                            "cannot be checked against this run; restore it, or ++overwrite=true to generate again")
        if previous is None:
            raise UserError(f"{existing[0]} exists but has no record of how it was made ({self.meta_path.name} "
                            "missing); choose another ++output_file, or ++overwrite=true to replace it")
        old, new = _flatten(previous), _flatten(self.settings)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UserError(f"{existing[0]} was generated with different settings (changed: {', '.join(changed)}); "
                        "its lines would not match this run. Use another ++output_file, or ++overwrite=true to discard it")

    def load(self, items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Check settings, repair a torn partial file, and return finished rows by input index."""
        self._check_settings()
        done: dict[int, dict[str, Any]] = {}
        if self.path.exists():
            for index, row in enumerate(read_jsonl(self.path)):
                self._check_same_item(index, row, items)
                done[index] = row
        if self.partial_path.exists():
            _cut_torn_tail(self.partial_path)
            for row in read_jsonl(self.partial_path):
                index = row.pop(INDEX_KEY)
                self._check_same_item(index, row, items)
                done[index] = row
        self._has_rows = bool(done)
        return done

    def record_model(self, model: str) -> None:
        """Remember the model the server answered with; refuse to mix models in one output."""
        if self._has_rows and self._previous_model and model != self._previous_model:
            raise UserError(f"{self.path} holds lines from model {self._previous_model!r} but the server now serves "
                            f"{model!r}; use another ++output_file, or ++overwrite=true")
        self.resolved_model = model

    def _check_same_item(self, index: int, row: dict[str, Any], items: list[dict[str, Any]]) -> None:
        if index < len(items) and "id" in row and "id" in items[index] and row["id"] != items[index]["id"]:
            raise UserError(f"{self.path}: line {index + 1} is for item {row['id']!r} but input item {index + 1} is "
                            f"{items[index]['id']!r}; the input changed. Use another ++output_file, or ++overwrite=true")

    def append(self, index: int, row: dict[str, Any]) -> None:
        """Record one finished row (flushed to the OS at once, so a killed process keeps it)."""
        if self._handle is None:
            self._write_meta()
            self._handle = open(self.partial_path, "a", encoding="utf-8", buffering=1)
        self._handle.write(encode_json({**row, INDEX_KEY: index}) + "\n")

    def finish(self, rows: dict[int, dict[str, Any]]) -> None:
        """Write every row in input order to the final file atomically, then drop the partial file."""
        self.close()
        self._write_meta()
        write_jsonl_atomic(self.path, (rows[i] for i in sorted(rows)))
        self.partial_path.unlink(missing_ok=True)

    def _write_meta(self) -> None:
        meta = {"settings": self.settings, "resolved_model": self.resolved_model or self._previous_model,
                **self.record, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_text(self.meta_path, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


def _cut_torn_tail(path: Path) -> None:
    """Drop an incomplete last line (a write cut short by a kill)."""
    with open(path, "rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            handle.truncate(end)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out or {prefix: {}}
