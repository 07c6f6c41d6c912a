"""Finding runs under the served directories, and what the runs page says about each.

A *run* is a directory holding ``metrics.json`` or ``<benchmark>/output-*.jsonl`` files (finished,
or ``.partial`` while generation is in progress). Served directories are scanned again when a page
asks and the last scan is older than a couple of seconds, so new runs and files appear without a
restart. Runs are named by their path relative to the served directory they were found under
(prefixed with that directory's name when several are served); the viewer only ever opens files
found by a scan, whose real path lies inside a served directory.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from nemo_eval.run_layout import GREEDY_NAME, LOGS_DIR, METRICS_NAME, SAMPLED_NAME, meta_path

PARTIAL_SUFFIX = ".partial"
MAX_DEPTH = 6  # how deep below a served directory runs are looked for
RESCAN_SECONDS = 2.0


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``step_100`` before ``step_1000`` and ``rs2`` before ``rs10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


@dataclass
class OutputFile:
    """One generation file of a benchmark (its finished form, or the partial one while in progress)."""

    name: str  # output-greedy.jsonl / output-rs<seed>.jsonl
    path: Path  # what to read: the final file, else the .partial one
    seed: Optional[int]
    in_progress: bool

    @property
    def label(self) -> str:
        return "greedy" if self.seed is None else f"rs{self.seed}"


@dataclass
class Run:
    """One output directory."""

    id: str
    path: Path
    group: str  # the id of the parent directory: runs side by side in one folder form a group (a sweep)
    benchmarks: dict[str, list[OutputFile]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def in_progress(self) -> bool:
        return any(f.in_progress for files in self.benchmarks.values() for f in files)

    def files(self) -> list[OutputFile]:
        return [f for files in self.benchmarks.values() for f in files]

    def file(self, benchmark: str, name: str) -> Optional[OutputFile]:
        return next((f for f in self.benchmarks.get(benchmark, []) if f.name == name), None)


def _output_name(entry: str) -> Optional[tuple[str, bool]]:
    """(output file name, in progress) for a generation file or its partial form, else None."""
    in_progress = entry.endswith(PARTIAL_SUFFIX)
    name = entry[: -len(PARTIAL_SUFFIX)] if in_progress else entry
    if name == GREEDY_NAME or SAMPLED_NAME.fullmatch(name):
        return name, in_progress
    return None


def _seed(name: str) -> Optional[int]:
    match = SAMPLED_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def _benchmark_files(directory: Path) -> list[OutputFile]:
    found: dict[str, OutputFile] = {}
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    for entry in entries:
        parsed = _output_name(entry)
        if parsed is None:
            continue
        name, in_progress = parsed
        if name in found and not found[name].in_progress:
            continue
        if not in_progress or name not in found:
            # A finished file wins over a partial one (the partial is removed right after it is written).
            found[name] = OutputFile(name, directory / entry, _seed(name), in_progress)
    return sorted(found.values(), key=lambda f: (f.seed is not None, f.seed or 0))


class Catalog:
    """The runs under a set of served directories.

    Args:
        roots: Directories to serve (each may be a run itself or hold many).
    """

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(os.path.realpath(root)) for root in roots]
        names = [root.name or str(root) for root in self.roots]
        self._prefixes = [""] if len(self.roots) == 1 else [
            name if names.count(name) == 1 else f"{name}-{i + 1}" for i, name in enumerate(names)]
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}
        self._scanned = 0.0

    def inside(self, path: Path) -> bool:
        """Whether ``path`` really (after symlinks) lies in a served directory."""
        real = os.path.realpath(path)
        return any(real == str(root) or real.startswith(str(root) + os.sep) for root in self.roots)

    def runs(self) -> dict[str, Run]:
        """Every run by id, rescanned when the last scan is older than ``RESCAN_SECONDS``."""
        with self._lock:
            if time.monotonic() - self._scanned > RESCAN_SECONDS:
                runs: dict[str, Run] = {}
                for root, prefix in zip(self.roots, self._prefixes):
                    self._scan(root, prefix, runs)
                self._runs = dict(sorted(runs.items(), key=lambda item: natural_key(item[0])))
                self._scanned = time.monotonic()
            return self._runs

    def run(self, run_id: str) -> Optional[Run]:
        return self.runs().get(run_id)

    def _scan(self, root: Path, prefix: str, runs: dict[str, Run]) -> None:
        for directory, subdirs, files in os.walk(root):
            here = Path(directory)
            depth = len(here.relative_to(root).parts)
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != LOGS_DIR and depth < MAX_DEPTH)
            benchmarks = {}
            for sub in subdirs:
                outputs = [f for f in _benchmark_files(here / sub) if self.inside(f.path)]
                if outputs:
                    benchmarks[sub] = outputs
            if not benchmarks and METRICS_NAME not in files:
                continue
            relative = here.relative_to(root).as_posix()
            run_id = "/".join(part for part in (prefix, "" if relative == "." else relative) if part) or here.name
            parent = run_id.rsplit("/", 1)[0] if "/" in run_id else ""
            runs[run_id] = Run(run_id, here, parent, benchmarks)
            subdirs[:] = [d for d in subdirs if d not in benchmarks]  # benchmark folders hold no runs


def read_json_file(catalog: Catalog, path: Path) -> Optional[dict[str, Any]]:
    """A JSON object from a file inside the served directories, or None (missing, unreadable, not JSON)."""
    if not catalog.inside(path):
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def file_meta(catalog: Catalog, output: OutputFile) -> dict[str, Any]:
    """The ``.meta.json`` of a generation file (settings, resolved model, prompt record), or {}."""
    final = output.path.with_name(output.name)
    return read_json_file(catalog, meta_path(final)) or {}


def run_summary(catalog: Catalog, run: Run) -> dict[str, Any]:
    """What the runs page shows about a run: model, server, date, sampling, size, progress."""
    models, servers, sampling = set(), set(), {}
    size, newest, lines_in_progress = 0, 0.0, 0
    for output in run.files():
        meta = file_meta(catalog, output)
        settings = meta.get("settings") or {}
        model = meta.get("resolved_model") or settings.get("model")
        if model:
            models.add(str(model))
        server = meta.get("server") or {}
        if server.get("type"):
            servers.add(str(server["type"]) + (f" {server['base_url']}" if server.get("base_url") else ""))
        request = settings.get("request") or {}
        kind = "greedy" if output.seed is None else "sampled"
        sampling.setdefault(kind, {k: request[k] for k in ("temperature", "top_p", "top_k", "max_tokens")
                                   if k in request})
        try:
            stat = output.path.stat()
        except OSError:
            continue
        size += stat.st_size
        newest = max(newest, stat.st_mtime)
        if output.in_progress:
            lines_in_progress += count_lines(output.path)
    seeds = {b: sum(f.seed is not None for f in files) for b, files in run.benchmarks.items()}
    return {"models": sorted(models), "servers": sorted(servers), "sampling": sampling, "size": size,
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(newest)) if newest else "",
            "in_progress": run.in_progress, "lines_in_progress": lines_in_progress, "seeds": seeds}


def count_lines(path: Path) -> int:
    """Lines in a file, counted without parsing them."""
    count = 0
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
    except OSError:
        return 0
    return count
