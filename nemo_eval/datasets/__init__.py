"""Benchmark definitions and data preparation (the first stage).

A benchmark is one folder ``datasets/<name>/`` holding ``benchmark.yaml`` (raw files with
canonical URL and checksum, splits, defaults) and ``convert.py`` (raw files -> uniform JSONL).
"""

from nemo_eval.datasets.spec import BENCHMARKS, BenchmarkDefaults, BenchmarkSpec, RawFile, get_benchmark

__all__ = ["BENCHMARKS", "BenchmarkDefaults", "BenchmarkSpec", "RawFile", "get_benchmark"]
