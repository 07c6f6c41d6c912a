"""``nemo-eval prepare-data``: download, verify and convert benchmarks into uniform JSONL.

For each benchmark: fetch its raw files (mirror or canonical URL, checksum-checked) into
``<data_dir>/<name>/raw/``, run its ``convert.py`` for every split, validate the uniform
schema and write ``<data_dir>/<name>/<split>.jsonl`` atomically. A stamp file records a
fingerprint of the inputs and each output's checksum, so running again is a no-op when
nothing changed. A file lock makes concurrent runs (several jobs on a shared disk) safe.

Run as ``nemo-eval prepare-data [NAMES ...]`` or ``python -m nemo_eval.datasets.prepare``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.datasets.fetch import MIRROR_ENV, checksum_problem, fetch_raw_file, file_sha256
from nemo_eval.datasets.spec import BENCHMARKS, BenchmarkSpec, get_benchmark
from nemo_eval.errors import EXIT_USER_ERROR, UserError, run_main
from nemo_eval.eval_types import get_eval_type
from nemo_eval.jsonl import atomic_write_text, read_jsonl, write_jsonl_atomic

DATA_DIR_ENV = "NEMO_EVAL_DATA_DIR"
FORMAT_VERSION = 1
STAMP_NAME = ".prepared.json"


def default_data_dir() -> Path:
    """``$NEMO_EVAL_DATA_DIR``, else ``$XDG_CACHE_HOME/nemo-eval/data`` (``~/.cache`` by default)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "nemo-eval" / "data"


@dataclass
class PrepareResult:
    """What preparing one benchmark did."""

    name: str
    counts: dict[str, int]
    folder: Path
    up_to_date: bool


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_up_to_date(spec: BenchmarkSpec, folder: Path, fingerprint: str) -> bool:
    stamp = _read_stamp(folder)
    if not stamp or stamp.get("fingerprint") != fingerprint:
        return False
    for split in spec.splits:
        path = folder / f"{split}.jsonl"
        recorded = stamp.get("splits", {}).get(split, {})
        if not path.is_file() or file_sha256(path) != recorded.get("sha256"):
            return False
    return True


def validate_rows(spec: BenchmarkSpec, split: str, rows: list[dict[str, Any]]) -> None:
    """Check the uniform schema: the eval type's required fields present and typed, ids unique."""
    kind = get_eval_type(spec.defaults.eval_type)
    required = dict.fromkeys(("id", "problem", *kind.required_fields))
    seen: set[str] = set()
    for index, row in enumerate(rows):
        for key in required:
            if not isinstance(row.get(key), str) or (key not in kind.may_be_empty and not row[key].strip()):
                raise UserError(f"benchmark {spec.name} split {split} row {index}: field {key!r} must be a "
                                f"non-empty string (converter {spec.converter_path})")
        if row["id"] in seen:
            raise UserError(f"benchmark {spec.name} split {split}: duplicate id {row['id']!r} (converter {spec.converter_path})")
        seen.add(row["id"])
    if not rows:
        raise UserError(f"benchmark {spec.name} split {split}: the converter produced no rows")


def _fetch_all(spec: BenchmarkSpec, raw_dir: Path, mirror: str | None) -> None:
    for raw in spec.raw_files:
        target = raw_dir / raw.name
        if target.is_file() and checksum_problem(target, raw) is None:
            continue
        target.unlink(missing_ok=True)
        fetch_raw_file(spec.name, raw, target, mirror)


def prepare_benchmark(name: str, data_dir: Path | None = None, force: bool = False,
                      mirror: str | None = None) -> PrepareResult:
    """Prepare one benchmark; a no-op when its files are present and current.

    Args:
        name: Benchmark name.
        data_dir: Root of prepared data; defaults to :func:`default_data_dir`.
        force: Convert again even when up to date (raw files are still reused if valid).
        mirror: Mirror directory or URL; defaults to ``$NEMO_EVAL_DATA_MIRROR``.
    """
    spec = get_benchmark(name)
    folder = (data_dir or default_data_dir()) / spec.name
    fingerprint = spec.fingerprint(FORMAT_VERSION)
    with _locked(folder):
        if not force and _is_up_to_date(spec, folder, fingerprint):
            stamp = _read_stamp(folder) or {}
            counts = {s: int(stamp["splits"][s]["count"]) for s in spec.splits}
            return PrepareResult(spec.name, counts, folder, up_to_date=True)
        (folder / STAMP_NAME).unlink(missing_ok=True)
        raw_dir = folder / "raw"
        _fetch_all(spec, raw_dir, mirror)
        convert = spec.load_converter()
        splits: dict[str, dict[str, Any]] = {}
        for split in spec.splits:
            rows = list(convert(split, raw_dir))
            validate_rows(spec, split, rows)
            path = folder / f"{split}.jsonl"
            write_jsonl_atomic(path, rows)
            splits[split] = {"count": len(rows), "sha256": file_sha256(path)}
        stamp = {"benchmark": spec.name, "fingerprint": fingerprint, "format_version": FORMAT_VERSION, "splits": splits}
        atomic_write_text(folder / STAMP_NAME, json.dumps(stamp, indent=1) + "\n")
        return PrepareResult(spec.name, {s: v["count"] for s, v in splits.items()}, folder, up_to_date=False)


def prepared_split_path(name: str, split: str | None = None, data_dir: Path | None = None,
                        auto_prepare: bool = True) -> Path:
    """Path of a prepared split's JSONL, preparing the benchmark first if needed."""
    spec = get_benchmark(name)
    split = split or spec.defaults.split
    if split not in spec.splits:
        raise UserError(f"benchmark {name} has no split {split!r}; splits: {', '.join(spec.splits)}")
    if auto_prepare:
        prepare_benchmark(name, data_dir)
    path = (data_dir or default_data_dir()) / spec.name / f"{split}.jsonl"
    if not path.is_file():
        raise UserError(f"{path} does not exist; run: nemo-eval prepare-data {name}")
    return path


def load_items(name: str, split: str | None = None, data_dir: Path | None = None) -> list[dict[str, Any]]:
    """The prepared items of one benchmark split, preparing the benchmark first if needed."""
    return list(read_jsonl(prepared_split_path(name, split, data_dir)))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nemo-eval prepare-data",
        description="Download benchmark raw files from their canonical URLs (or a mirror), verify their "
                    "checksums and convert them into uniform JSONL, one file per split. Re-running is a "
                    "no-op when everything is up to date.",
        epilog=f"Environment: {DATA_DIR_ENV} sets the data directory (default ~/.cache/nemo-eval/data); "
               f"{MIRROR_ENV} names a directory or URL laid out as <benchmark>/<original file name> to read "
               "raw files from instead of the network.")
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                        help="benchmarks to prepare (default: all). Known: " + ", ".join(BENCHMARKS.names()))
    parser.add_argument("--data-dir", type=Path, default=None, help=f"where prepared data goes (default: ${DATA_DIR_ENV} or the user cache)")
    parser.add_argument("--force", action="store_true", help="convert again even when up to date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.benchmarks or BENCHMARKS.names()
    for name in names:  # validate every name before doing any work
        get_benchmark(name)
    failed: list[str] = []
    for name in names:
        try:
            result = prepare_benchmark(name, args.data_dir, force=args.force)
        except UserError as exc:
            if len(names) == 1:
                raise
            print(f"nemo-eval prepare-data: error: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        counts = ", ".join(f"{split} {count}" for split, count in result.counts.items())
        state = "up to date" if result.up_to_date else "prepared"
        print(f"{result.name}: {state} ({counts}) -> {result.folder}")
    if failed:
        print(f"nemo-eval prepare-data: error: {len(failed)} of {len(names)} benchmarks failed: "
              f"{', '.join(failed)} (see the lines above)", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main("nemo-eval prepare-data", main))
