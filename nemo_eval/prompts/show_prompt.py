"""``nemo-eval show-prompt``: print the exact prompt the model would see for one benchmark item.

Check a prompt (config, few-shot set, model template) before spending GPU hours:
``nemo-eval show-prompt gsm8k ++prompt_config=lm-eval/gsm8k-cot ++examples_type=gsm8k_cot
++prompt_template=llama3-instruct``. The benchmark is named as in ``nemo-eval generate``: the first word,
or ``++benchmark=gsm8k``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.arguments import Parser, benchmark_word
from nemo_eval.datasets.prepare import load_items
from nemo_eval.datasets.spec import get_benchmark
from nemo_eval.errors import UserError, run_main
from nemo_eval.overrides import help_lines, parse_overrides
from nemo_eval.prompts.builder import PromptSettings, build_prompt, resolve_prompt


@dataclass
class ShowPromptConfig(PromptSettings):
    """Prompt settings plus which item to show."""

    benchmark: Optional[str] = field(default=None, metadata={
        "help": "benchmark name (see nemo-eval list-benchmarks); also given as the first word: show-prompt gsm8k"})
    split: Optional[str] = field(default=None, metadata={"help": "benchmark split (default: the benchmark's)"})
    index: int = field(default=0, metadata={"help": "position of the item in the split (0-based)"})
    id: Optional[str] = field(default=None, metadata={"help": "pick the item by its id instead of its index"})
    count: int = field(default=1, metadata={
        "help": "show this many items from the chosen one on (--format json prints a list when > 1)"})


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nemo-eval show-prompt",
        description="Print the exact prompt the model would see for one item of a benchmark: the chat messages "
                    "(or, with ++prompt_template, the raw text for a completion endpoint) and the stop strings. "
                    "Prepares the benchmark's data first if needed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="overrides:\n" + "\n".join(help_lines(ShowPromptConfig)))
    parser.add_argument("overrides", nargs="*", metavar="BENCHMARK | ++key=value",
                        help="the benchmark (a name, or ++benchmark=NAME as in nemo-eval generate) and settings, see below")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: readable with headers; json: the messages/prompt and stop as sent")
    parser.add_argument("--data-dir", type=Path, default=None, help="prepared data directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = parse_overrides(ShowPromptConfig, benchmark_word(args.overrides))
    if not config.benchmark:
        raise UserError("name the benchmark: nemo-eval show-prompt gsm8k (or ++benchmark=gsm8k); "
                        "nemo-eval list-benchmarks lists them")
    spec = get_benchmark(config.benchmark)
    split = config.split or spec.defaults.split
    resolved = resolve_prompt(config, spec.defaults, lambda name: load_items(spec.name, name, args.data_dir), split)
    items = load_items(spec.name, config.split, args.data_dir)
    if config.id is not None:
        matches = [i for i, item in enumerate(items) if item["id"] == config.id]
        if not matches:
            raise UserError(f"{spec.name} has no item with id {config.id!r} (ids look like {items[0]['id']!r})")
        index = matches[0]
    else:
        index = config.index
        if not 0 <= index < len(items):
            raise UserError(f"index {index} is out of range: {spec.name} has {len(items)} items (0..{len(items) - 1})")
    if config.count < 1:
        raise UserError(f"++count must be >= 1, got {config.count}")
    shown = range(index, min(index + config.count, len(items)))
    prompts = [build_prompt(resolved, items[i], position=i) for i in shown]
    if args.format == "json":
        bodies = [{**({"prompt": p.text} if p.text is not None else {"messages": p.messages}), "stop": p.stop}
                  for p in prompts]
        print(json.dumps(bodies[0] if config.count == 1 else bodies, ensure_ascii=False, indent=1))
        return 0
    out = sys.stdout
    if resolved.pool_count:
        fmt = resolved.config.few_shot_examples
        shots = f"{resolved.pool_count} drawn from the {fmt.from_split if fmt else ''} split ({fmt.sampler if fmt else ''})"
    else:
        shots = f"{len(resolved.examples)} from {resolved.examples_type}" if resolved.examples else "none"
    for i, prompt in zip(shown, prompts):
        out.write(f"# benchmark {spec.name}, split {split}, item {i} (id {items[i]['id']}) of {len(items)}\n")
        out.write(f"# prompt config {resolved.config.name}; few-shot examples: {shots}; format: "
                  f"{'raw text, template ' + resolved.template.name if resolved.template else 'chat messages'}\n")
        out.write(f"# stop strings: {json.dumps(prompt.stop, ensure_ascii=False)}\n")
        if prompt.text is not None:
            out.write("=" * 30 + " prompt text " + "=" * 30 + "\n" + prompt.text + "\n" + "=" * 73 + "\n")
        else:
            for message in prompt.messages:
                out.write("=" * 30 + f" {message['role']} " + "=" * 30 + "\n" + message["content"] + "\n")
            out.write("=" * 66 + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main("nemo-eval show-prompt", main))
