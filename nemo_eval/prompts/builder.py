"""Filling a prompt config for one item: few-shot examples, messages, raw text, stop strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from nemo_eval.datasets.spec import BenchmarkDefaults
from nemo_eval.errors import UserError
from nemo_eval.prompts.config import EXAMPLE_SETS, MODEL_TEMPLATES, ModelTemplate, PromptConfig, load_prompt_config


@dataclass
class PromptSettings:
    """Which prompt to use; any field left None takes the benchmark's default."""

    prompt_config: Optional[str] = field(default=None, metadata={
        "help": "prompt config name (e.g. generic/math, lm-eval/gsm8k-cot) or path to a YAML file"})
    examples_type: Optional[str] = field(default=None, metadata={
        "help": "few-shot example set under prompts/examples (e.g. gsm8k_cot, minerva_math)"})
    num_few_shots: Optional[int] = field(default=None, metadata={
        "help": "how many few-shot examples to show (default: the benchmark's, or all of a chosen set)"})
    prompt_template: Optional[str] = field(default=None, metadata={
        "help": "model template (llama3-instruct, chatml, qwen, plain) to render one raw-text prompt for "
                "completion endpoints; unset = chat messages"})
    system_message: Optional[str] = field(default=None, metadata={
        "help": "replace the prompt config's system message"})


@dataclass(frozen=True)
class ResolvedPrompt:
    """The concrete prompt choice for a benchmark run."""

    config: PromptConfig
    examples: tuple[dict[str, Any], ...]
    examples_type: str | None
    template: ModelTemplate | None
    system_message: str | None


@dataclass
class Prompt:
    """What is sent to the model for one item.

    Attributes:
        messages: Chat messages (``role``/``content``); always filled.
        text: The raw-text prompt when a model template is used, else None.
        stop: Stop strings (prompt config's, then the template's).
    """

    messages: list[dict[str, str]]
    text: str | None
    stop: list[str]


def resolve_prompt(settings: PromptSettings, defaults: BenchmarkDefaults | None = None) -> ResolvedPrompt:
    """Combine user settings with benchmark defaults and validate the combination."""
    defaults = defaults or BenchmarkDefaults()
    config = load_prompt_config(settings.prompt_config or defaults.prompt_config)
    examples_type = settings.examples_type if settings.examples_type is not None else defaults.examples_type
    examples: tuple[dict[str, Any], ...] = ()
    if settings.num_few_shots is not None:
        count = settings.num_few_shots
    elif examples_type is None:
        count = 0
    elif examples_type == defaults.examples_type:
        count = defaults.num_few_shots
    else:
        count = len(EXAMPLE_SETS.get(examples_type).examples)
    if count < 0:
        raise UserError(f"num_few_shots must be >= 0, got {count}")
    if count > 0:
        if not examples_type:
            raise UserError(f"num_few_shots={count} needs ++examples_type=<set>; sets: {', '.join(EXAMPLE_SETS.names())}")
        available = EXAMPLE_SETS.get(examples_type).examples
        if count > len(available):
            raise UserError(f"num_few_shots={count} but example set {examples_type!r} has only {len(available)} examples")
        if config.few_shot_examples is None or "{examples}" not in config.user:
            raise UserError(f"prompt config {config.name!r} does not take few-shot examples (no few_shot_examples "
                            "section or no {examples} field); use one that does, or ++num_few_shots=0")
        examples = available[:count]
    template = MODEL_TEMPLATES.get(settings.prompt_template) if settings.prompt_template else None
    return ResolvedPrompt(config, examples, examples_type if examples else None, template, settings.system_message)


def _fill(template: str, values: dict[str, Any], where: str) -> str:
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise UserError(f"{where} uses the field {{{exc.args[0]}}}, which this item does not have; item fields: "
                        f"{', '.join(sorted(k for k in values if k != 'examples'))}") from None
    except (ValueError, IndexError, AttributeError) as exc:
        raise UserError(f"{where} is not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None


def render_examples(resolved: ResolvedPrompt) -> str:
    """The ``{examples}`` block: prefix, each example through the template, suffix."""
    fmt = resolved.config.few_shot_examples
    if not resolved.examples or fmt is None:
        return ""
    where = f"few-shot template of {resolved.config.name}"
    body = "".join(_fill(fmt.template, dict(example), f"{where} (example set {resolved.examples_type})")
                   for example in resolved.examples)
    return fmt.prefix + body + fmt.suffix


def render_text(messages: list[dict[str, str]], template: ModelTemplate) -> str:
    """Render chat messages as one raw-text prompt ending where the assistant's reply begins."""
    parts = [template.bos]
    if template.default_system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": template.default_system}, *messages]
    for message in messages:
        begin, end = {"system": (template.system_begin, template.system_end),
                      "user": (template.user_begin, template.user_end),
                      "assistant": (template.assistant_begin, template.assistant_end)}[message["role"]]
        parts += [begin, message["content"], end]
    parts.append(template.assistant_begin)
    return "".join(parts)


def prompt_record(resolved: ResolvedPrompt, examples_block: str | None = None) -> dict[str, Any]:
    """Everything that turns an item into its prompt, as plain JSON (stored next to generations).

    :func:`prompt_from_record` rebuilds any item's prompt from it exactly, without the prompt files, so
    the prompt a model saw can be shown later even after the prompt config changed.
    """
    config = resolved.config
    template = resolved.template
    code = config.code_execution
    return {
        "config": config.name,
        "system": resolved.system_message if resolved.system_message is not None else config.system,
        "user": config.user,
        "examples": render_examples(resolved) if examples_block is None else examples_block,
        "stop": list(config.stop),
        "template": None if template is None else {
            "name": template.name, "bos": template.bos, "system_begin": template.system_begin,
            "system_end": template.system_end, "user_begin": template.user_begin, "user_end": template.user_end,
            "assistant_begin": template.assistant_begin, "assistant_end": template.assistant_end,
            "default_system": template.default_system, "stop": list(template.stop)},
        "code_execution": None if code is None else {
            "code_begin": code.code_begin, "code_end": code.code_end,
            "output_begin": code.output_begin, "output_end": code.output_end},
    }


def prompt_from_record(record: dict[str, Any], item: dict[str, Any]) -> Prompt:
    """The prompt for one item from a :func:`prompt_record` (what :func:`build_prompt` sends)."""
    values = dict(item)
    values["examples"] = record["examples"]
    name = record["config"]
    messages = []
    if record["system"]:
        messages.append({"role": "system", "content": _fill(record["system"], values, f"system message of {name}")})
    messages.append({"role": "user", "content": _fill(record["user"], values, f"user template of {name}")})
    stop = list(record["stop"])
    text = None
    if record["template"] is not None:
        fields = dict(record["template"])
        fields["stop"] = tuple(fields["stop"])
        template = ModelTemplate(path=Path(), **fields)
        text = render_text(messages, template)
        stop += [s for s in template.stop if s not in stop]
    return Prompt(messages=messages, text=text, stop=stop)


def build_prompt(resolved: ResolvedPrompt, item: dict[str, Any], examples_block: str | None = None) -> Prompt:
    """The prompt for one item.

    Args:
        resolved: From :func:`resolve_prompt`.
        item: One benchmark item (its fields fill the user template).
        examples_block: Pre-rendered :func:`render_examples` output, to avoid re-rendering per item.
    """
    return prompt_from_record(prompt_record(resolved, examples_block), item)
