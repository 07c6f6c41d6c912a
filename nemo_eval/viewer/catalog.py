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
    """Sort key that orders ``step_100`` before ``step_1000`` and ``rs2`` before ``rs10`` (ASCII digits only)."""
    return [(0, int(part), "") if part.isdigit() and part.isascii() else (1, 0, part.lower())
            for part in re.split(r"([0-9]+)", text)]


def printable_name(name: str) -> bool:
    """Whether a file name decodes as UTF-8 (others cannot be shown in a page or a URL; they are skipped)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class OutputFile:
    """One generation file of a benchmark: its finished form, its partial one (generation running, or a rerun
    retrying failed lines of the finished file), or both."""

    name: str  # output-greedy.jsonl / output-rs<seed>.jsonl
    final: Optional[Path]
    partial: Optional[Path]
    seed: Optional[int]

    @property
    def in_progress(self) -> bool:
        return self.partial is not None

    @property
    def paths(self) -> list[Path]:
        """What to read, in order: the finished lines, then the newer ones of the partial file."""
        return [p for p in (self.final, self.partial) if p is not None]

    @property
    def path(self) -> Path:
        return self.paths[0]

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


def _benchmark_files(directory: Path, inside) -> list[OutputFile]:
    found: dict[str, OutputFile] = {}
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    for entry in entries:
        parsed = _output_name(entry)
        if parsed is None or not inside(directory / entry) or not (directory / entry).is_file():
            continue
        name, in_progress = parsed
        output = found.setdefault(name, OutputFile(name, None, None, _seed(name)))
        if in_progress:
            output.partial = directory / entry
        else:
            output.final = directory / entry
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
        self.json_cache: dict[Path, tuple[tuple[int, int, int], Optional[dict[str, Any]]]] = {}  # small files

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
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != LOGS_DIR and depth < MAX_DEPTH
                                and printable_name(d))
            benchmarks = {}
            for sub in subdirs:
                outputs = _benchmark_files(here / sub, self.inside)
                if outputs:
                    benchmarks[sub] = outputs
            if not benchmarks and METRICS_NAME not in files:
                continue
            relative = here.relative_to(root).as_posix()
            run_id = "/".join(part for part in (prefix, "" if relative == "." else relative) if part) or here.name
            parent = run_id.rsplit("/", 1)[0] if "/" in run_id else ""
            unique, number = run_id, 1
            while unique in runs:  # a served folder that is a run, holding a run of its own name
                number += 1
                unique = f"{run_id}~{number}"
            runs[unique] = Run(unique, here, parent, benchmarks)
            subdirs[:] = [d for d in subdirs if d not in benchmarks]  # benchmark folders hold no runs


def open_inside(catalog: Catalog, path: Path):
    """Open ``path`` for reading in binary, refusing (PermissionError) a file whose real path, checked on the
    open file itself, is outside the served directories: a file swapped for a symlink after a scan is not read."""
    handle = open(path, "rb")
    try:
        real = os.readlink(f"/proc/self/fd/{handle.fileno()}") if os.path.isdir("/proc/self/fd") else str(path)
        if not catalog.inside(Path(real)):
            raise PermissionError(f"{path} leads outside the served directories")
    except BaseException:
        handle.close()
        raise
    return handle


def read_json_file(catalog: Catalog, path: Path) -> Optional[dict[str, Any]]:
    """A JSON object from a file inside the served directories, or None (missing, unreadable, not JSON).

    Parsed files are remembered while their size, time and inode stay the same (meta files and metrics.json
    are read for every run on every runs page)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    cached = catalog.json_cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with open_inside(catalog, path) as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        value = None
    value = value if isinstance(value, dict) else None
    if len(catalog.json_cache) > 100_000:
        catalog.json_cache.clear()
    catalog.json_cache[path] = (stamp, value)
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else {} (meta files come from disk: any field may have any type)."""
    return value if isinstance(value, dict) else {}


def file_meta(catalog: Catalog, output: OutputFile) -> dict[str, Any]:
    """The ``.meta.json`` of a generation file (settings, resolved model, prompt record), or {}."""
    final = output.path.with_name(output.name)
    return read_json_file(catalog, meta_path(final)) or {}


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run_summary(catalog: Catalog, run: Run) -> dict[str, Any]:
    """What the runs page shows about a run: model, server, date, sampling, size, progress."""
    models, servers, sampling = set(), set(), {}
    size, newest, lines_in_progress = 0, 0.0, 0
    for output in run.files():
        meta = file_meta(catalog, output)
        settings = as_dict(meta.get("settings"))
        model = meta.get("resolved_model") or settings.get("model")
        if model:
            models.add(_scalar(model))
        server = as_dict(meta.get("server"))
        if server.get("type"):
            servers.add(_scalar(server["type"]) + (f" {_scalar(server['base_url'])}" if server.get("base_url") else ""))
        request = as_dict(settings.get("request"))
        kind = "greedy" if output.seed is None else "sampled"
        sampling.setdefault(kind, {k: _scalar(request[k]) for k in ("temperature", "top_p", "top_k", "max_tokens")
                                   if k in request})
        for path in output.paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            size += stat.st_size
            newest = max(newest, stat.st_mtime)
        if output.partial is not None:
            lines_in_progress += count_lines(catalog, output.partial)
    seeds = {b: sum(f.seed is not None for f in files) for b, files in run.benchmarks.items()}
    return {"models": sorted(models), "servers": sorted(servers), "sampling": sampling, "size": size,
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(newest)) if newest else "",
            "in_progress": run.in_progress, "lines_in_progress": lines_in_progress, "seeds": seeds}


def count_lines(catalog: Catalog, path: Path) -> int:
    """Lines in a file, counted without parsing them."""
    count = 0
    try:
        with open_inside(catalog, path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
    except OSError:
        return 0
    return count
