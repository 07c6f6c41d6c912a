"""``nemo-eval judge``: ask a judge model whether each predicted answer matches the reference answer.

    nemo-eval judge ++prediction_jsonl_files='[results/math-500/output-rs0.jsonl]' \\
        ++server.base_url=http://127.0.0.1:8000/v1 ++server.model=JUDGE [++mode=cheap] [++cache_dir=DIR]

Runs on graded files (after ``evaluate``), next to the symbolic grader, never instead of it. Each line
gets ``judgement`` (the judge's raw answer; null when it was not asked) and ``judge_correct`` (true,
false, or null when the answer had no verdict: *invalid*), as NeMo-Skills' answer judges record them.
Requests go through the generation client, so the judge gets the same retries, rate limits, adaptive
concurrency, proxies, response cache and cost accounting as generation (``++server.*``, ``++cache_dir``).

Modes: ``all`` judges every line with a predicted answer; ``cheap`` judges only the lines the symbolic
grader said wrong or could not decide (lines it found correct count as judge-correct unasked). A line
without a predicted answer is judge-wrong unasked. The judge prompt is a prompt config
(``judge/math`` in ``prompts/judge/``); its verdict is the last ``Judgement: Yes|No`` line.

Judgements are appended to ``<file>.judge.partial`` as they come (a killed run keeps them and the same
command continues), then merged into the file atomically. ``compute-metrics`` / ``summarize-results``
report ``judge_accuracy``, ``judge_invalid``, ``judge_agreement``, ``accuracy_any``, ``accuracy_both``
next to the symbolic ``accuracy``, and pass@k / majority@k over judge verdicts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from tqdm import tqdm

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError, run_main
from nemo_eval.inference.accounting import Prices, totals_text, usage_totals
from nemo_eval.inference.config import ServerConfig
from nemo_eval.inference.openai_api import ItemFailed, OpenAICompatClient
from nemo_eval.inference.request_gate import gate_for_server
from nemo_eval.inference.response_cache import ResponseCache
from nemo_eval.jsonl import check_readable_file, encode_json, read_jsonl, write_jsonl_atomic
from nemo_eval.overrides import help_lines, parse_overrides
from nemo_eval.prompts.builder import PromptSettings, build_prompt, resolve_prompt

PROG = "nemo-eval judge"
MODES = ("all", "cheap")
VERDICT = re.compile(r"judge?ment\s*[:：]\s*[*_`\s]*(yes|no)\b", re.IGNORECASE)
PARTIAL_SUFFIX = ".judge.partial"


@dataclass
class JudgeConfig:
    """Settings of ``nemo-eval judge``."""

    prediction_jsonl_files: List[str] = field(default_factory=list, metadata={
        "help": "graded generation files to judge in place, e.g. '[a.jsonl,b.jsonl]'"})
    mode: str = field(default="all", metadata={
        "help": "all: judge every line with an answer; cheap: only those the symbolic grader said wrong or could not decide"})
    prompt_config: str = field(default="judge/math", metadata={"help": "the judge prompt (a prompt config)"})
    tokens_to_generate: int = field(default=512, metadata={"help": "max tokens of a judgement"})
    max_concurrent_requests: int = field(default=32, metadata={"help": "judge requests in flight at once"})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "response cache (as in generate)"})
    rejudge: bool = field(default=False, metadata={"help": "judge lines that already have a judgement again"})
    server: ServerConfig = field(default_factory=ServerConfig)


def parse_verdict(text: Optional[str]) -> Optional[bool]:
    """The last ``Judgement: Yes|No`` of a judge's answer; None when there is none (an invalid judgement)."""
    found = VERDICT.findall(text or "")
    return None if not found else found[-1].lower() == "yes"


def _needs_judge(line: dict[str, Any], mode: str) -> bool:
    if line.get("predicted_answer") is None:
        return False
    return mode == "all" or not line.get("is_correct") or bool(line.get("grading_error"))


def _unasked(line: dict[str, Any]) -> dict[str, Any]:
    """The judgement of a line the judge is not asked about (no answer; or cheap mode and symbolic-correct)."""
    if line.get("predicted_answer") is None:
        return {"judgement": None, "judge_correct": False}
    return {"judgement": None, "judge_correct": bool(line.get("is_correct"))}


def _read_partial(path: Path) -> dict[int, dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    for raw in path.read_bytes().splitlines():
        try:
            entry = json.loads(raw)
            done[int(entry["index"])] = {"judgement": entry["judgement"], "judge_correct": entry["judge_correct"]}
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of a killed run
    return done


async def _judge_lines(config: JudgeConfig, client: OpenAICompatClient, resolved, lines: list[dict[str, Any]],
                       todo: list[int], partial: Path, label: str, usage: list[dict[str, Any]]) -> tuple[int, int]:
    """Ask the judge about ``todo``; returns (judged, failed). Each judgement is appended to ``partial``, and
    each answer's token counts to ``usage``."""
    queue = iter(todo)
    counts = [0, 0]
    bar = tqdm(total=len(todo), desc=label, unit="item", file=sys.stderr, mininterval=1.0, dynamic_ncols=True)
    with open(partial, "a", encoding="utf-8", buffering=1) as log:
        async def worker() -> None:
            for index in queue:
                line = lines[index]
                item = {"problem": line.get("problem", ""), "expected_answer": line.get("expected_answer", ""),
                        "predicted_answer": line.get("predicted_answer", ""), "generation": line.get("generation", "")}
                prompt = build_prompt(resolved, {k: "" if v is None else str(v) for k, v in item.items()})
                body = {"model": config.server.model, "messages": prompt.messages,
                        "max_tokens": config.tokens_to_generate, "temperature": 0.0}
                try:
                    completion = await client.complete("chat", body)
                except ItemFailed as exc:
                    counts[1] += 1
                    print(f"  could not judge line {index + 1}: {exc}", file=sys.stderr)
                    bar.update(1)
                    continue
                verdict = {"judgement": completion.text, "judge_correct": parse_verdict(completion.text)}
                usage.append({"generation": completion.text, "num_input_tokens": completion.num_input_tokens,
                              "num_generated_tokens": completion.num_generated_tokens, "cached": completion.cached,
                              "request_seconds": completion.request_seconds})
                lines[index].update(verdict)
                log.write(encode_json({"index": index, **verdict}) + "\n")
                counts[0] += 1
                bar.update(1)

        await asyncio.gather(*(worker() for _ in range(min(config.max_concurrent_requests, len(todo)) or 1)))
    bar.close()
    return counts[0], counts[1]


async def _run(config: JudgeConfig, paths: list[Path]) -> int:
    if not config.server.base_url:
        raise UserError("say where the judge is: ++server.base_url=http://HOST:PORT/v1 (and ++server.model=NAME)")
    resolved = resolve_prompt(PromptSettings(prompt_config=config.prompt_config))
    gate = gate_for_server(config.server, config.server.base_url, config.max_concurrent_requests,
                           config.tokens_to_generate, launched=False)  # the judge is an existing endpoint
    cache = ResponseCache(Path(config.cache_dir).expanduser()) if config.cache_dir else None
    client = OpenAICompatClient(config.server, config.server.base_url, gate, cache)
    failed_total = 0
    usage: list[dict[str, Any]] = []
    try:
        config.server.model = await client.resolve_model(config.server.model)
        for path in paths:
            lines = list(read_jsonl(path))
            if any("is_correct" not in line for line in lines):
                raise UserError(f"{path} is not graded yet; run nemo-eval evaluate on it first (the judge works next "
                                "to the symbolic grader)")
            partial = path.with_name(path.name + PARTIAL_SUFFIX)
            for index, verdict in _read_partial(partial).items():
                if index < len(lines):
                    lines[index].update(verdict)
            todo = []
            for index, line in enumerate(lines):
                asked = line.get("judgement") is not None
                if "judge_correct" in line and not config.rejudge and (asked or not _needs_judge(line, config.mode)):
                    continue  # judged already (an unasked line of a cheap run is asked by a later 'all' run)
                if _needs_judge(line, config.mode):
                    todo.append(index)
                else:
                    line.update(_unasked(line))
            judged, failed = await _judge_lines(config, client, resolved, lines, todo, partial, path.parent.name, usage)
            failed_total += failed
            write_jsonl_atomic(path, lines)
            if not failed:
                partial.unlink(missing_ok=True)
            right = sum(line.get("judge_correct") is True for line in lines)
            invalid = sum("judge_correct" in line and line["judge_correct"] is None for line in lines)
            print(f"{path}: judged {judged} line(s) ({failed} failed, {len(lines) - len(todo)} unasked or done); "
                  f"judge accuracy {100 * right / max(len(lines), 1):.2f}, {invalid} invalid", file=sys.stderr)
    finally:
        await client.aclose()
    prices = Prices(config.server.price_per_million_input, config.server.price_per_million_output)
    print(f"{PROG}: {totals_text(usage_totals(usage, prices))}; {gate.stats.throttled} answers 429", file=sys.stderr)
    if failed_total:
        print(f"{PROG}: {failed_total} line(s) could not be judged; run the same command again to retry them",
              file=sys.stderr)
    return 1 if failed_total else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(prog=PROG, usage=f"{PROG} ++prediction_jsonl_files='[F,...]' ++server.base_url=URL [++key=value ...]",
                    description="Ask a judge model whether each predicted answer matches the reference answer, next to "
                                "the symbolic grader's verdict (in place; resumable).",
                    epilog="settings:\n" + "\n".join(help_lines(JudgeConfig)),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    _, overrides = parser.parse_known_args(argv)
    config = parse_overrides(JudgeConfig, overrides)
    if config.mode not in MODES:
        raise UserError(f"++mode must be one of {', '.join(MODES)}, got {config.mode!r}")
    if config.max_concurrent_requests < 1 or config.tokens_to_generate < 1:
        raise UserError("++max_concurrent_requests and ++tokens_to_generate must be at least 1")
    if not config.prediction_jsonl_files:
        raise UserError("name the files to judge: ++prediction_jsonl_files='[results/math-500/output-greedy.jsonl]'")
    paths = [Path(p).expanduser() for p in config.prediction_jsonl_files]
    for path in paths:
        check_readable_file(path, "prediction file")
    return asyncio.run(_run(config, paths))


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
