"""One generation run: items -> prompts -> concurrent requests -> resumable output.

:func:`plan_run` turns a :class:`GenerateConfig` into a :class:`RunPlan` (items, prompt,
request template, output), checking everything it can before any server is contacted.
:func:`execute` sends the pending items with at most ``max_concurrent_requests`` in flight,
records each as it finishes, and writes the final file in input order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tqdm import tqdm

from nemo_eval.datasets.prepare import load_items
from nemo_eval.datasets.spec import BenchmarkDefaults, get_benchmark
from nemo_eval.errors import UserError
from nemo_eval.inference.code_execution import generate_with_code
from nemo_eval.inference.config import GenerateConfig, check_settings, decode_escapes, sampling_params
from nemo_eval.inference.openai_api import Completion, ItemFailed, OpenAICompatClient, prompt_chars
from nemo_eval.inference.accounting import Prices
from nemo_eval.inference.request_gate import gate_for_server
from nemo_eval.inference.response_cache import ResponseCache
from nemo_eval.inference.resumable_output import ResumableOutput
from nemo_eval.jsonl import check_readable_file, make_dir, read_jsonl
from nemo_eval.prompts.builder import (ResolvedPrompt, drawn_examples, item_examples, prompt_from_record, prompt_record,
                                      render_examples, resolve_prompt)
from nemo_eval.run_layout import output_path
from nemo_eval.sandbox import SandboxClient

ENDPOINTS = ("chat", "completions")


@dataclass
class RunPlan:
    """Everything a run needs, resolved and validated."""

    items: list[dict[str, Any]]
    resolved: ResolvedPrompt
    examples_block: str
    endpoint: str
    request_params: dict[str, Any]
    output: ResumableOutput
    label: str
    settings: dict[str, Any] = field(default_factory=dict)
    code_execution: Optional[Any] = None  # the CodeExecutionConfig when enabled
    prompt_record: dict[str, Any] = field(default_factory=dict)  # prompts.builder.prompt_record of this run
    positions: dict[str, int] = field(default_factory=dict)  # item id -> position in its split

    def item_examples(self, item: dict[str, Any]) -> Optional[str]:
        """The few-shot block drawn for this item (when examples are drawn per item), else None."""
        return item_examples(self.resolved, item, self.positions.get(str(item.get("id"))))

    def request_body(self, item: dict[str, Any], model: str) -> dict[str, Any]:
        prompt = prompt_from_record(self.prompt_record, item, self.item_examples(item))
        body: dict[str, Any] = {"model": model}
        if self.endpoint == "chat":
            body["messages"] = prompt.messages
        else:
            body["prompt"] = prompt.text
        body.update(self.request_params)
        stop = prompt.stop + [s for s in self.request_params.get("stop", []) if s not in prompt.stop]
        if stop:
            body["stop"] = stop
        else:
            body.pop("stop", None)
        return body


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _output_path(config: GenerateConfig) -> Path:
    if config.output_file:
        return Path(config.output_file).expanduser()
    if config.output_dir and config.benchmark:
        return output_path(Path(config.output_dir).expanduser(), config.benchmark, config.inference.random_seed)
    raise UserError("say where to write: ++output_file=PATH (or ++output_dir=DIR together with ++benchmark)")


def plan_run(config: GenerateConfig) -> RunPlan:
    """Resolve items, prompt, request parameters and output; no network."""
    if bool(config.benchmark) == bool(config.input_file):
        raise UserError("give exactly one of ++benchmark=NAME or ++input_file=PATH")
    check_settings(config)
    data_dir = Path(config.data_dir).expanduser() if config.data_dir else None
    if config.benchmark:
        spec = get_benchmark(config.benchmark)
        defaults = spec.defaults
        items = load_items(spec.name, config.split, data_dir)
        source = {"benchmark": spec.name, "split": config.split or defaults.split}
        label = spec.name
    else:
        path = Path(config.input_file).expanduser()
        check_readable_file(path, "input file")
        defaults = BenchmarkDefaults()
        items = list(read_jsonl(path))
        _check_unique_ids(path, items)
        source = {"input_file": str(path.resolve()), "sha256": _file_sha256(path)}
        label = path.stem
    if config.max_samples >= 0:
        items = items[: config.max_samples]
    if not items:
        raise UserError("there is nothing to generate: the input has no items (check ++max_samples)")
    positions = {str(item.get("id", index)): index for index, item in enumerate(items)}
    if config.benchmark:
        resolved = resolve_prompt(config, defaults, lambda split: load_items(spec.name, split, data_dir),
                                  config.split or defaults.split)
    else:
        resolved = resolve_prompt(config, defaults)
    if resolved.pool_count:   # draw every item's few-shot examples now, before requests run concurrently
        drawn_examples(resolved, items[-1], len(items) - 1)
    endpoint = config.inference.endpoint or ("completions" if resolved.template else "chat")
    if endpoint not in ENDPOINTS:
        raise UserError(f"++inference.endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
    if endpoint == "completions" and resolved.template is None:
        raise UserError("the completions endpoint takes raw text: set ++prompt_template (llama3-instruct, chatml, "
                        "qwen, plain), or use ++inference.endpoint=chat")
    inference = config.inference
    params: dict[str, Any] = {"max_tokens": inference.tokens_to_generate or defaults.tokens_to_generate,
                              **sampling_params(inference)}
    if inference.top_k is not None:
        params["top_k"] = inference.top_k
    if inference.random_seed is not None:
        params["seed"] = inference.random_seed
    if inference.stop:
        params["stop"] = [decode_escapes(stop) for stop in inference.stop]
    params.update(inference.extra_body)
    code_execution = config.code_execution if config.code_execution.enabled else None
    if code_execution is not None:
        if resolved.config.code_execution is None:
            raise UserError(f"++code_execution.enabled=true needs a prompt config with code_execution markers "
                            f"(e.g. generic/math-with-code); {resolved.config.name} has none")
        if endpoint != "completions":
            raise UserError("code execution continues the model's text after each output, which needs the "
                            "completions endpoint: set ++prompt_template (e.g. chatml, llama3-instruct)")
        if code_execution.max_executions < 0:
            raise UserError("++code_execution.max_executions must be >= 0")
    prompt_file = resolved.config.path
    settings = {
        "input": source,
        "model": config.server.model,
        "prompt": {"config": resolved.config.name, "config_sha256": _file_sha256(prompt_file),
                   "examples_type": resolved.examples_type,
                   "num_few_shots": resolved.pool_count or len(resolved.examples),
                   "template": resolved.template.name if resolved.template else None,
                   "system_message": resolved.system_message},
        "endpoint": endpoint,
        "request": params,
    }
    if code_execution is not None:
        settings["code_execution"] = {"max_executions": code_execution.max_executions,
                                      "timeout": code_execution.timeout,
                                      "max_output_chars": code_execution.max_output_chars}
    output_path = _output_path(config)
    make_dir(output_path.parent, "output folder")
    if output_path.is_dir():
        raise UserError(f"output file {output_path} is a directory; give a file path (or ++output_dir=DIR)")
    examples_block = render_examples(resolved)
    record = prompt_record(resolved, examples_block)
    # Not part of the settings compared on resume: a record of what was sent, for viewers and audits.
    about = {"prompt_record": record, "server": {"type": config.server.server_type,
                                                 "base_url": config.server.base_url}}
    prices = prices_of(config)
    if prices.known:
        about["prices_per_million_tokens"] = prices.as_dict()
    output = ResumableOutput(output_path, settings, overwrite=config.overwrite, record=about)
    return RunPlan(items=items, resolved=resolved, examples_block=examples_block, endpoint=endpoint,
                   request_params=params, output=output, label=label, settings=settings,
                   code_execution=code_execution, prompt_record=record, positions=positions)


def _check_unique_ids(path: Path, items: list[dict[str, Any]]) -> None:
    """Ids match generations to items (resume, metrics, compare): the input must not repeat one."""
    seen: dict[Any, int] = {}
    for number, item in enumerate(items, start=1):
        if "id" not in item:
            continue
        key = json.dumps(item["id"])
        if key in seen:
            raise UserError(f"input file {path}: id {item['id']!r} is on items {seen[key]} and {number}; ids must be "
                            "unique (or leave the id field out)")
        seen[key] = number


def _result_row(item: dict[str, Any], completion: Any = None, error: Optional[str] = None) -> dict[str, Any]:
    row = dict(item)
    if error is not None:
        row.update(generation=None, num_generated_tokens=0, finish_reason="error", error=error)
        return row
    row.update(generation=completion.text, num_generated_tokens=completion.num_generated_tokens,
               finish_reason=completion.finish_reason)
    if completion.reasoning:
        row["reasoning"] = completion.reasoning
    for key in ("num_input_tokens", "num_reasoning_tokens", "request_seconds"):  # accounting, when known
        value = getattr(completion, key, None)
        if value is not None:
            row[key] = value
    if getattr(completion, "cached", False):
        row["cached"] = True
    return row


@dataclass
class RunStats:
    generated: int = 0
    failed: int = 0
    tokens: int = 0
    seconds: float = 0.0
    failures: list[tuple[int, str]] = field(default_factory=list)


async def _generate_one(plan: RunPlan, client: OpenAICompatClient, model: str, item: dict[str, Any],
                        sandbox: Optional[SandboxClient]) -> tuple[Any, dict[str, Any]]:
    body = plan.request_body(item, model)
    if sandbox is None:
        return await client.complete(plan.endpoint, body), {}
    settings = plan.code_execution
    result = await generate_with_code(client, sandbox, body, plan.resolved.config.code_execution, settings.max_executions,
                                      settings.timeout, settings.max_output_chars)
    return (Completion(text=result.text, finish_reason=result.finish_reason,
                       num_generated_tokens=result.num_generated_tokens),
            {"num_code_executions": result.num_code_executions})


async def _send_all(plan: RunPlan, client: OpenAICompatClient, model: str, pending: list[int],
                    rows: dict[int, dict[str, Any]], concurrency: int) -> RunStats:
    stats = RunStats()
    queue = iter(pending)
    start = time.monotonic()

    next_postfix = [0.0]

    sandbox = None
    if plan.code_execution is not None:
        sandbox = SandboxClient(plan.code_execution.sandbox_address, max_concurrency=concurrency)
        await asyncio.to_thread(sandbox.health)  # unreachable sandbox: one clear error before any request
    bar = tqdm(total=len(pending), desc=plan.label, unit="item", file=sys.stderr, mininterval=1.0,
               dynamic_ncols=True)

    async def worker() -> None:
        for index in queue:
            item = plan.items[index]
            try:
                completion, extra = await _generate_one(plan, client, model, item, sandbox)
                row = {**_result_row(item, completion), **extra}
                examples = plan.item_examples(item)
                if examples is not None:  # drawn for this item: kept so the prompt can be shown as sent
                    row["prompt_examples"] = examples
                stats.generated += 1
                stats.tokens += completion.num_generated_tokens or 0
            except ItemFailed as exc:
                row = _result_row(item, error=str(exc))
                stats.failed += 1
                stats.failures.append((index, str(exc)))
            plan.output.append(index, row)
            rows[index] = row
            bar.update(1)
            now = time.monotonic()
            if now >= next_postfix[0]:  # formatting the postfix per item would cost more than the request
                next_postfix[0] = now + 0.5
                postfix = {"tok_s": f"{stats.tokens / max(now - start, 1e-9):.0f}", "errors": stats.failed}
                gate = client.gate
                if gate is not None and (gate.adaptive or gate.stats.throttled):
                    postfix.update(conc=gate.limit, **{"429s": gate.stats.throttled})
                bar.set_postfix(postfix, refresh=False)

    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(pending)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bar.close()
        stats.seconds = time.monotonic() - start
        if sandbox is not None:
            sandbox.close()
    return stats


def prices_of(config: GenerateConfig) -> Prices:
    return Prices(config.server.price_per_million_input, config.server.price_per_million_output)


def prompt_sizes(plan: RunPlan, indices) -> list[int]:
    """Prompt characters of the items at ``indices`` (for cost estimates)."""
    return [prompt_chars(plan.request_body(plan.items[i], "model")) for i in indices]


async def _run_async(plan: RunPlan, base_url: str, config: GenerateConfig, pending: list[int],
                     rows: dict[int, dict[str, Any]], request_model: Optional[str]) -> RunStats:
    cache = ResponseCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None
    gate = gate_for_server(config.server, base_url, config.max_concurrent_requests,
                           plan.request_params.get("max_tokens"), launched=config.server.server_type != "openai")
    client = OpenAICompatClient(config.server, base_url, gate, cache)
    try:
        model = await client.resolve_model(request_model)
        plan.output.record_model(model)
        return await _send_all(plan, client, model, pending, rows, config.max_concurrent_requests)
    finally:
        await client.aclose()


def pending_indices(plan: RunPlan, rows: dict[int, dict[str, Any]]) -> list[int]:
    """Items without a finished line (missing, or recorded with an error)."""
    return [i for i in range(len(plan.items)) if i not in rows or rows[i].get("error")]


def execute(plan: RunPlan, base_url: str, config: GenerateConfig, rows: dict[int, dict[str, Any]],
            pending: list[int], request_model: Optional[str]) -> RunStats:
    """Generate ``pending`` items, record them, and write the final output.

    Args:
        request_model: Model name sent in requests; None = the only model the server offers.
    """
    try:
        stats = asyncio.run(_run_async(plan, base_url, config, pending, rows, request_model))
    finally:
        plan.output.close()
    plan.output.finish(rows)
    return stats


def describe_request(plan: RunPlan, model: str) -> str:
    """The first item's request body, for ``++dry_run=true``."""
    return json.dumps(plan.request_body(plan.items[0], model), ensure_ascii=False, indent=1)
