"""The three kinds of prompt files under ``prompts/`` and their registries.

- Prompt configs (``prompts/<group>/<name>.yaml``, named ``<group>/<name>``): system message,
  user template, few-shot formatting, stop strings, optional code-execution markers.
- Few-shot example sets (``prompts/examples/<name>.yaml``).
- Model templates (``prompts/templates/<name>.yaml``): chat markup for raw-text prompts.

Each file is validated when loaded: unknown keys and missing required ones are one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from nemo_eval.errors import UserError, reject_unknown_keys
from nemo_eval.registry import Registry
from nemo_eval.resources import search_path

T = TypeVar("T")
_SPECIAL_DIRS = {"examples", "templates"}


SAMPLERS = ("first_n", "lm-eval-random")


@dataclass(frozen=True)
class FewShotFormat:
    """How few-shot examples are rendered into ``{examples}``: prefix + template per example + suffix.

    Attributes:
        from_split: Draw the examples from this split of the benchmark being run (its prepared items)
            instead of an example set; then ``sampler`` says how, and ``num`` how many by default.
        sampler: ``first_n`` (the split's first items, the same for every item) or ``lm-eval-random``
            (lm-evaluation-harness's default sampler: one ``random.Random(seed)`` drawing
            ``sample(split, n)`` per item in order, so item k gets the k-th draw).
        seed: The sampler's seed (lm-eval's ``fewshot_random_seed`` default is 1234).
        num: How many examples when ``++num_few_shots`` is not given.
    """

    template: str
    prefix: str = ""
    suffix: str = ""
    from_split: str | None = None
    sampler: str = "first_n"
    seed: int = 1234
    num: int = 0


@dataclass(frozen=True)
class CodeExecutionMarkers:
    """Markers around model-written code and its interpreter output (enables code execution)."""

    code_begin: str
    code_end: str
    output_begin: str
    output_end: str


@dataclass(frozen=True)
class PromptConfig:
    """A prompt config file, validated."""

    name: str
    path: Path
    user: str
    description: str = ""
    system: str = ""
    few_shot_examples: FewShotFormat | None = None
    stop: tuple[str, ...] = ()
    code_execution: CodeExecutionMarkers | None = None
    lm_eval_task: str = ""   # the lm-eval task whose scoring fits this prompt (gsm8k_cot, mbpp), if any


@dataclass(frozen=True)
class ExampleSet:
    """A named few-shot example set."""

    name: str
    path: Path
    examples: tuple[dict[str, Any], ...]
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class ModelTemplate:
    """Chat markup used to render messages as one raw-text prompt."""

    name: str
    path: Path
    description: str = ""
    bos: str = ""
    system_begin: str = ""
    system_end: str = ""
    user_begin: str = ""
    user_end: str = ""
    assistant_begin: str = ""
    assistant_end: str = ""
    default_system: str | None = None
    stop: tuple[str, ...] = ()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a YAML mapping")
    return data


def _build(cls: type[T], source: Path, data: Any, **fixed: Any) -> T:
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping for {cls.__name__}")
    reject_unknown_keys(str(source), data, {f.name for f in fields(cls)} - set(fixed))
    try:
        return cls(**data, **fixed)
    except TypeError as exc:
        raise UserError(f"{source}: {exc}") from None


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{path}: {key} must be a list of strings")
    return tuple(value)


def _markers(path: Path, data: Any) -> CodeExecutionMarkers:
    markers = _build(CodeExecutionMarkers, path, data)
    empty = [f.name for f in fields(CodeExecutionMarkers) if not isinstance(getattr(markers, f.name), str)
             or not getattr(markers, f.name)]
    if empty:
        raise UserError(f"{path}: code_execution markers must be non-empty strings ({', '.join(empty)} is not)")
    return markers


def load_prompt_config(name_or_path: str) -> PromptConfig:
    """A prompt config by registered name (``generic/math``) or by path to a YAML file."""
    path = Path(name_or_path).expanduser()
    if name_or_path.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise UserError(f"prompt config file {path} does not exist; give a registered name "
                            f"({', '.join(PROMPT_CONFIGS.names())}) or an existing YAML file")
        return _parse_prompt_config(str(path), path)
    return PROMPT_CONFIGS.get(name_or_path)


def _parse_prompt_config(name: str, path: Path) -> PromptConfig:
    data = _read_yaml(path)
    if not isinstance(data.get("user"), str):
        raise UserError(f"{path}: 'user' (the user message template) is required")
    few_shot = data.pop("few_shot_examples", None)
    code = data.pop("code_execution", None)
    stop = _strings(path, "stop", data.pop("stop", None))
    data["system"] = data.get("system") or ""
    few_shot_format = _build(FewShotFormat, path, few_shot) if few_shot else None
    if few_shot_format is not None and few_shot_format.sampler not in SAMPLERS:
        raise UserError(f"{path}: few_shot_examples.sampler must be one of {', '.join(SAMPLERS)}, "
                        f"got {few_shot_format.sampler!r}")
    return _build(PromptConfig, path, data, name=name, path=path, stop=stop,
                  few_shot_examples=few_shot_format,
                  code_execution=_markers(path, code) if code else None)


def _parse_example_set(name: str, path: Path) -> ExampleSet:
    data = _read_yaml(path)
    examples = data.pop("examples", None)
    if not isinstance(examples, list) or not examples or not all(isinstance(e, dict) for e in examples):
        raise UserError(f"{path}: 'examples' must be a non-empty list of mappings")
    return _build(ExampleSet, path, data, name=name, path=path, examples=tuple(examples))


def _parse_model_template(name: str, path: Path) -> ModelTemplate:
    data = _read_yaml(path)
    stop = _strings(path, "stop", data.pop("stop", None))
    return _build(ModelTemplate, path, data, name=name, path=path, stop=stop)


def _discoverer(subdir: str | None, parse: Callable[[str, Path], T]) -> Callable[[], dict[str, T]]:
    def discover() -> dict[str, T]:
        found: dict[str, T] = {}
        for root in search_path("prompts"):
            base = root / subdir if subdir else root
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*.yaml")):
                relative = path.relative_to(base)
                if subdir is None and relative.parts[0] in _SPECIAL_DIRS:
                    continue
                name = relative.with_suffix("").as_posix()
                if name not in found:
                    found[name] = parse(name, path)
        return found
    return discover


PROMPT_CONFIGS: Registry[PromptConfig] = Registry(
    "prompt config", _discoverer(None, _parse_prompt_config),
    "Or pass a path to your own YAML file (see docs/prompts.md).")
EXAMPLE_SETS: Registry[ExampleSet] = Registry("few-shot example set", _discoverer("examples", _parse_example_set))
MODEL_TEMPLATES: Registry[ModelTemplate] = Registry("model template", _discoverer("templates", _parse_model_template))
