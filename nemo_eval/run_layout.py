"""The layout of a run's output directory: every stage computes names here, nowhere else.

    <output_dir>/<benchmark>/output-greedy.jsonl     one greedy run
    <output_dir>/<benchmark>/output-rs<seed>.jsonl   one sampled run per seed
    <output_dir>/<benchmark>/<file>.meta.json        the settings a file was generated with
    <output_dir>/metrics.json                        every benchmark's metrics
    <output_dir>/logs/                               logs of every step

Runs are named on the command line as ``name:N`` lists (``gsm8k:0,math-500:4``): a greedy run of
each benchmark plus N sampled runs with seeds ``0..N-1``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from nemo_eval.errors import UserError

GREEDY_NAME = "output-greedy.jsonl"
SAMPLED_NAME = re.compile(r"output-rs(\d+)\.jsonl$")
METRICS_NAME = "metrics.json"
LOGS_DIR = "logs"


def output_name(random_seed: Optional[int]) -> str:
    """``output-greedy.jsonl`` for greedy runs, ``output-rs<seed>.jsonl`` for sampled ones."""
    return GREEDY_NAME if random_seed is None else f"output-rs{random_seed}.jsonl"


def output_path(output_dir: Path, benchmark: str, random_seed: Optional[int]) -> Path:
    """Where the run of ``benchmark`` with ``random_seed`` (None: greedy) writes its generations."""
    return output_dir / benchmark / output_name(random_seed)


def meta_path(path: Path) -> Path:
    """The settings file next to a generation file."""
    return path.with_name(path.name + ".meta.json")


def sampled_seed(path: Path) -> Optional[int]:
    """The seed of an ``output-rs<seed>.jsonl`` file, None for any other name."""
    match = SAMPLED_NAME.search(path.name)
    return int(match.group(1)) if match else None


def is_output_file(path: Path) -> bool:
    """Whether ``path`` is named like a run's generation file."""
    return path.name == GREEDY_NAME or sampled_seed(path) is not None


def run_label(benchmark: str, seed: Optional[int]) -> str:
    """``gsm8k-greedy``, ``gsm8k-rs3``: names a run in logs and messages."""
    return f"{benchmark}-{output_name(seed).removeprefix('output-').removesuffix('.jsonl')}"


def find_benchmark_files(out_dir: Path) -> dict[str, list[Path]]:
    """``{benchmark: [generation files]}`` for every ``<out_dir>/<benchmark>/output-*.jsonl``."""
    found: dict[str, list[Path]] = {}
    for path in sorted(out_dir.glob("*/output-*.jsonl")):
        if is_output_file(path):
            found.setdefault(path.parent.name, []).append(path)
    return found


def parse_benchmark_runs(spec: str) -> list[tuple[str, Optional[int]]]:
    """``gsm8k:0,math-500:4`` -> one greedy run per benchmark plus N sampled runs with seeds 0..N-1.

    Returns:
        ``[(benchmark, seed or None for greedy), ...]`` in order.
    """
    runs: list[tuple[str, Optional[int]]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition(":")
        try:
            samples = int(count) if count else 0
        except ValueError:
            raise UserError(f"benchmark spec {part!r}: the number after ':' must be an integer (e.g. gsm8k:4)") from None
        if samples < 0:
            raise UserError(f"benchmark spec {part!r}: the number of samples must be >= 0")
        runs.append((name, None))
        runs += [(name, seed) for seed in range(samples)]
    if not runs:
        raise UserError("no benchmarks given; use e.g. --benchmarks gsm8k:0,math-500:4")
    return runs
