"""Filling a prompt config for one item: few-shot examples, messages, raw text, stop strings."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

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
    pool: tuple[dict[str, Any], ...] = ()   # the split few-shot examples are drawn from (``from_split``)
    pool_count: int = 0                    # how many are drawn per item (0: the fixed ``examples`` apply)
    exclude_item: bool = False             # the pool is the run's own split: an item is never its own example
    draws: list[list[int]] = field(default_factory=list, compare=False)   # lm-eval-random: draws so far, by position
    rng: list[random.Random] = field(default_factory=list, compare=False)  # lm-eval-random: its generator (one)


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


def resolve_prompt(settings: PromptSettings, defaults: BenchmarkDefaults | None = None,
                   load_split: Optional[Callable[[str], list[dict[str, Any]]]] = None,
                   run_split: Optional[str] = None) -> ResolvedPrompt:
    """Combine user settings with benchmark defaults and validate the combination.

    Args:
        settings: The user's prompt settings.
        defaults: The benchmark's defaults.
        load_split: Loads a split of the benchmark being run; needed by prompt configs whose few-shot
            examples come ``from_split``.
        run_split: The split being run (an item of it is never its own few-shot example).
    """
    defaults = defaults or BenchmarkDefaults()
    config = load_prompt_config(settings.prompt_config or defaults.prompt_config)
    fmt = config.few_shot_examples
    if fmt is not None and fmt.from_split:
        return _resolve_from_split(settings, config, load_split, run_split)
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


def _resolve_from_split(settings: PromptSettings, config: PromptConfig,
                        load_split: Optional[Callable[[str], list[dict[str, Any]]]],
                        run_split: Optional[str]) -> ResolvedPrompt:
    fmt = config.few_shot_examples
    assert fmt is not None and fmt.from_split
    if settings.examples_type:
        raise UserError(f"prompt config {config.name!r} draws its few-shot examples from the {fmt.from_split!r} split; "
                        "drop ++examples_type (or pick another prompt config)")
    count = settings.num_few_shots if settings.num_few_shots is not None else fmt.num
    if count < 0:
        raise UserError(f"num_few_shots must be >= 0, got {count}")
    pool: tuple[dict[str, Any], ...] = ()
    if count:
        if load_split is None:
            raise UserError(f"prompt config {config.name!r} draws few-shot examples from a benchmark's "
                            f"{fmt.from_split!r} split: run it on a benchmark (++benchmark=...), or ++num_few_shots=0")
        pool = tuple(load_split(fmt.from_split))
        exclude = run_split == fmt.from_split
        if count > len(pool) - exclude:
            raise UserError(f"num_few_shots={count} but the {fmt.from_split!r} split has only {len(pool)} items")
    template = MODEL_TEMPLATES.get(settings.prompt_template) if settings.prompt_template else None
    return ResolvedPrompt(config, (), None, template, settings.system_message, pool=pool, pool_count=count,
                          exclude_item=count > 0 and run_split == fmt.from_split)


def drawn_examples(resolved: ResolvedPrompt, item: dict[str, Any], position: int) -> list[dict[str, Any]]:
    """The few-shot examples drawn from the pool for the item at ``position`` of its split."""
    fmt = resolved.config.few_shot_examples
    assert fmt is not None
    count, pool = resolved.pool_count, resolved.pool
    wanted = count + resolved.exclude_item
    if fmt.sampler == "first_n":
        picked = [pool[i] for i in range(min(wanted, len(pool)))]
    else:
        if not resolved.rng:
            resolved.rng.append(random.Random(fmt.seed))
        while len(resolved.draws) <= position:   # item k gets the k-th draw of one seeded generator
            resolved.draws.append(resolved.rng[0].sample(range(len(pool)), wanted))
        picked = [pool[i] for i in resolved.draws[position]]
    if resolved.exclude_item:
        picked = [example for example in picked if example.get("id") != item.get("id")]
    return picked[:count]


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
    the prompt a model saw can be shown later even after the prompt config changed. When few-shot
    examples are drawn per item from a split, ``examples`` is None and ``examples_per_item`` true: each
    output line then records its own rendered block (``prompt_examples``).
    """
    config = resolved.config
    template = resolved.template
    code = config.code_execution
    per_item = bool(resolved.pool_count)
    return {
        "config": config.name,
        "system": resolved.system_message if resolved.system_message is not None else config.system,
        "user": config.user,
        "examples": None if per_item else (render_examples(resolved) if examples_block is None else examples_block),
        "examples_per_item": per_item,
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


def prompt_from_record(record: dict[str, Any], item: dict[str, Any], examples: str | None = None) -> Prompt:
    """The prompt for one item from a :func:`prompt_record` (what :func:`build_prompt` sends).

    Args:
        record: From :func:`prompt_record`.
        item: The item (its fields fill the templates).
        examples: The item's own rendered few-shot block, when the record draws examples per item.
    """
    values = dict(item)
    values["examples"] = examples if examples is not None else (record.get("examples") or "")
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


def item_examples(resolved: ResolvedPrompt, item: dict[str, Any], position: int | None) -> str | None:
    """The rendered few-shot block drawn for one item when examples are drawn per item; else None."""
    if not resolved.pool_count:
        return None
    fmt = resolved.config.few_shot_examples
    assert fmt is not None
    if position is None:
        raise ValueError("few-shot examples drawn from a split need the item's position")
    where = f"few-shot template of {resolved.config.name}"
    return fmt.prefix + "".join(
        _fill(fmt.template, dict(example), f"{where} (examples from the {fmt.from_split} split)")
        for example in drawn_examples(resolved, item, position)) + fmt.suffix


def build_prompt(resolved: ResolvedPrompt, item: dict[str, Any], examples_block: str | None = None,
                 position: int | None = None) -> Prompt:
    """The prompt for one item.

    Args:
        resolved: From :func:`resolve_prompt`.
        item: One benchmark item (its fields fill the user template).
        examples_block: Pre-rendered :func:`render_examples` output, to avoid re-rendering per item.
        position: The item's position in its split (needed when examples are drawn per item from a split).
    """
    return prompt_from_record(prompt_record(resolved, examples_block), item,
                              item_examples(resolved, item, position))
