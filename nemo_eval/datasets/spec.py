"""Benchmark specifications: what ``datasets/<name>/benchmark.yaml`` declares, and discovery.

Every folder under the benchmark search path (the bundled ``datasets/`` plus folders listed in
``NEMO_EVAL_EXTRA_BENCHMARKS``) that holds a ``benchmark.yaml`` is a benchmark named after the
folder. Adding a benchmark means adding one folder. A folder that cannot be loaded (bad YAML, an
unknown eval type, no converter) is reported as one warning line naming it and left out; the other
benchmarks and every command that does not use it keep working.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

import yaml

from nemo_eval.errors import UserError, reject_unknown_keys
from nemo_eval.eval_types import EVAL_TYPES
from nemo_eval.registry import Broken, Registry
from nemo_eval.resources import search_path


@dataclass(frozen=True)
class RawFile:
    """One raw file as published upstream.

    Attributes:
        name: The original file name; also its name in a mirror (``<mirror>/<benchmark>/<name>``).
        url: Canonical download URL.
        alt_urls: Other URLs serving the same bytes, tried in order after ``url``.
        sha256: Expected SHA-256 of the bytes.
        git_blob_sha1: Expected git blob id, for files whose only published checksum is git's.
            Every file must have ``sha256`` or ``git_blob_sha1``: nothing unverified is ever converted.
    """

    name: str
    url: str
    alt_urls: tuple[str, ...] = ()
    sha256: str | None = None
    git_blob_sha1: str | None = None


@dataclass(frozen=True)
class BenchmarkDefaults:
    """How a benchmark is run unless the user overrides it.

    Attributes:
        prompt_config: Prompt config name under ``prompts/`` (or a YAML path).
        examples_type: Few-shot example set name under ``prompts/examples/``, or None.
        num_few_shots: How many few-shot examples to show (0 = none).
        eval_type: How generations are graded: a name in the eval-type registry
            (:data:`nemo_eval.eval_types.EVAL_TYPES`: ``math``, ``code``, ``multiple_choice``, ``ifeval``, plugins').
        metrics_type: Which metrics family summarises the results (the metrics registry,
            :data:`nemo_eval.metrics.families.METRICS`; checked when metrics are computed).
        tokens_to_generate: Default generation length.
        split: The split evaluated by default.
    """

    prompt_config: str = "generic/math"
    examples_type: str | None = None
    num_few_shots: int = 0
    eval_type: str = "math"
    metrics_type: str = "math"
    tokens_to_generate: int = 2048
    split: str = "test"


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark folder, parsed and validated."""

    name: str
    folder: Path
    description: str
    license: str
    raw_files: tuple[RawFile, ...]
    splits: tuple[str, ...]
    defaults: BenchmarkDefaults
    extra: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # answer-extraction settings, checked by evaluation

    @property
    def converter_path(self) -> Path:
        return self.folder / "convert.py"

    def load_converter(self) -> Callable[[str, Path], Iterable[dict[str, Any]]]:
        """Import ``convert.py`` from the folder and return its ``convert(split, raw_dir)``."""
        module_name = "nemo_eval_benchmark_" + "".join(c if c.isalnum() else "_" for c in self.name)
        spec = importlib.util.spec_from_file_location(module_name, self.converter_path)
        if spec is None or spec.loader is None:
            raise UserError(f"benchmark {self.name}: cannot load {self.converter_path}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        convert = getattr(module, "convert", None)
        if not callable(convert):
            raise UserError(f"benchmark {self.name}: {self.converter_path} must define convert(split, raw_dir)")
        return convert

    def fingerprint(self, format_version: int) -> str:
        """Hash of everything that determines the prepared files (checksums, converter code)."""
        digest = hashlib.sha256(f"format={format_version}\n".encode())
        for raw in self.raw_files:
            digest.update(f"{raw.name}:{raw.sha256}:{raw.git_blob_sha1}\n".encode())
        digest.update(",".join(self.splits).encode())
        digest.update(self.converter_path.read_bytes())
        return digest.hexdigest()


_TOP_KEYS = {"description", "license", "raw_files", "splits", "defaults", "evaluation", "homepage", "citation", "notes"}
_RAW_KEYS = {f.name for f in fields(RawFile)}
_DEFAULT_KEYS = {f.name for f in fields(BenchmarkDefaults)}


def load_spec(folder: Path) -> BenchmarkSpec:
    """Parse and validate ``folder/benchmark.yaml``."""
    path = folder / "benchmark.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping")
    reject_unknown_keys(str(path), data, _TOP_KEYS)
    raw_files = []
    for entry in data.get("raw_files") or []:
        reject_unknown_keys(f"{path} raw_files", entry, _RAW_KEYS)
        if not entry.get("sha256") and not entry.get("git_blob_sha1"):
            raise UserError(f"{path}: raw file {entry.get('name')} needs a sha256 (or git_blob_sha1) of the published "
                            "bytes; add it next to its url")
        raw_files.append(RawFile(**{**entry, "alt_urls": tuple(entry.get("alt_urls") or ())}))
    if not raw_files:
        raise UserError(f"{path}: raw_files must list at least one file")
    defaults_data = data.get("defaults") or {}
    reject_unknown_keys(f"{path} defaults", defaults_data, _DEFAULT_KEYS)
    defaults = BenchmarkDefaults(**defaults_data)
    if defaults.eval_type not in EVAL_TYPES:
        raise UserError(f"{path}: eval_type {defaults.eval_type!r} is not registered; known: "
                        f"{', '.join(EVAL_TYPES.names())} (a plugin registers more: docs/architecture.md)")
    splits = tuple(data.get("splits") or ("test",))
    if defaults.split not in splits:
        raise UserError(f"{path}: default split {defaults.split!r} is not in splits {list(splits)}")
    spec = BenchmarkSpec(
        name=folder.name, folder=folder, description=str(data.get("description", "")).strip(),
        license=str(data.get("license", "")), raw_files=tuple(raw_files), splits=splits, defaults=defaults,
        extra={k: data[k] for k in ("homepage", "citation", "notes") if k in data},
        evaluation=dict(data.get("evaluation") or {}),
    )
    if not spec.converter_path.is_file():
        raise UserError(f"benchmark {spec.name}: {spec.converter_path} is missing")
    return spec


def _discover() -> dict[str, BenchmarkSpec | Broken]:
    found: dict[str, BenchmarkSpec | Broken] = {}
    for root in search_path("datasets"):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / "benchmark.yaml").is_file() and folder.name not in found:
                try:
                    found[folder.name] = load_spec(folder)
                except (UserError, OSError, AttributeError, TypeError, ValueError) as exc:
                    found[folder.name] = Broken(f"{folder}: {exc}")
    return found


def new_benchmark_registry() -> Registry[BenchmarkSpec]:
    """A registry that discovers benchmark folders on first use."""
    return Registry("benchmark", discover=_discover,
                    hint="Add one as a folder with benchmark.yaml + convert.py (docs/architecture.md).")


BENCHMARKS: Registry[BenchmarkSpec] = new_benchmark_registry()


def get_benchmark(name: str) -> BenchmarkSpec:
    """The spec of benchmark ``name``; UserError listing known benchmarks if unknown."""
    return BENCHMARKS.get(name)
