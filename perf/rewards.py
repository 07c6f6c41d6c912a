"""Math rewards per second: ``nemo_eval.rewards.math_reward`` (isolation on) next to math-verify in-process, same run.

The workload is what a GRPO trainer hands its reward function: batches (``--batch``, 512) of
completions, ``--group`` (8) per problem, from the prepared MATH-500 and GSM8K test sets
(``nemo-eval prepare-data math-500 gsm8k``). Each group holds the reference solution, the answer
boxed, rewritten (``18.0``, ``0.5``) and stated in words, wrong answers (the answer plus one, the next
problem's answer), an ``<answer>`` tag and a response cut off mid-sentence, as sampled completions
of one prompt differ in how (and whether) they state an answer. Rewards are called TRL's way
(``math_reward(prompts=..., completions=..., answer=...)``) with the verdict cache off
(``cache_size=0``), so every batch is decided afresh (identical answers inside one batch are
decided once, as ``evaluate`` does). The workers start and warm up on the first batch before the
timing (as after a trainer's first step); that batch is not timed.

math-verify (``pip install math-verify``) parses and verifies each completion in this process, one after
the other, as its own reward functions do, warmed up on the same untimed batch. Prints rewards/s of each, the ratio and the agreement.

With ``--server``, the same batches also go through ``nemo-eval reward-server`` (started here on a free
port, its own workers warmed on the first batch), one HTTP request per batch, as a trainer in another
process would send them.

Usage: ``python perf/rewards.py [--batch 512] [--group 8] [--limit N] [--server]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "perf"))

from grading import _rewrite  # noqa: E402
from grading import math_verify as math_verify_verdicts  # noqa: E402

from nemo_eval.datasets.prepare import default_data_dir  # noqa: E402
from nemo_eval.evaluation.math_normalize import as_number  # noqa: E402
from nemo_eval.rewards import MathReward  # noqa: E402


def group(item: dict, other: dict, benchmark: str, size: int) -> list[str]:
    gold, solution = item["expected_answer"], item["reference_solution"]
    if benchmark == "gsm8k":
        solution = solution.rsplit("####", 1)[0] + f"The answer is $\\boxed{{{gold}}}$."
    value = as_number(gold.strip())
    wrong = f"{value.numerator + 1}" if value is not None and value.denominator == 1 else other["expected_answer"]
    rewritten = _rewrite(gold) or gold
    candidates = [solution, f"Let me compute step by step.\nSo the answer is $\\boxed{{{gold}}}$.",
                  f"Therefore the final answer is $\\boxed{{{rewritten}}}$.",
                  f"Adding it all up gives $\\boxed{{{wrong}}}$.", f"The answer is {other['expected_answer']}.",
                  f"<think>short</think><answer>{gold}</answer>", "First we note that the total is the sum of",
                  f"The final answer is {gold}."]
    return [candidates[i % len(candidates)] for i in range(size)]


def workload(data_dir: Path, size: int, limit: int) -> list[tuple[str, str]]:
    rows = []
    for benchmark in ("math-500", "gsm8k"):
        path = data_dir / benchmark / "test.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run nemo-eval prepare-data {benchmark}")
        items = [json.loads(line) for line in path.read_text().splitlines()]
        for index, item in enumerate(items):
            rows += [(text, item["expected_answer"]) for text in group(item, items[(index + 1) % len(items)], benchmark, size)]
    return rows[:limit] if limit else rows


def through_server(rows: list[tuple[str, str]], warm: list[tuple[str, str]], batch: int, in_process: float) -> None:
    import subprocess
    import urllib.request

    from nemo_eval.processes import free_port, poll_until_healthy

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "reward-server", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def post(part: list[tuple[str, str]]) -> list[float]:
        body = json.dumps({"reward": "math", "completions": [t for t, _ in part],
                           "columns": {"answer": [g for _, g in part]}}).encode()
        request = urllib.request.Request(url + "/score", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as answer:
            return json.loads(answer.read())["scores"]

    try:
        if poll_until_healthy(url + "/health", 60, proc.poll, interval=0.1) is not None:
            raise SystemExit("the reward server did not start")
        post(warm)
        start = time.perf_counter()
        for begin in range(0, len(rows), batch):
            post(rows[begin:begin + batch])
        seconds = time.perf_counter() - start
        print(f"  nemo-eval reward-server (HTTP, batches):  {seconds:7.2f} s  {len(rows) / seconds:8.1f} rewards/s  "
              f"({seconds / in_process:.2f}x the in-process time)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=512, help="completions per reward call (a training step)")
    parser.add_argument("--group", type=int, default=8, help="completions per problem")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N completions")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--skip-math-verify", action="store_true")
    parser.add_argument("--server", action="store_true", help="also time the batches through nemo-eval reward-server")
    args = parser.parse_args()
    rows = workload(args.data_dir or default_data_dir(), args.group, args.limit)
    reward = MathReward(cache_size=0)
    warm, rows = rows[:args.batch], rows[args.batch:]   # a trainer's first step starts and warms the workers
    reward(completions=[text for text, _ in warm], answer=[gold for _, gold in warm])
    print(f"{len(rows)} completions ({args.group} per problem, MATH-500 + GSM8K test), batches of {args.batch}; "
          f"isolation: {reward.decider.isolation()}, {reward.decider.pool.size} worker processes")
    start = time.perf_counter()
    ours = []
    for begin in range(0, len(rows), args.batch):
        batch = rows[begin:begin + args.batch]
        ours += reward(prompts=["p"] * len(batch), completions=[text for text, _ in batch], answer=[gold for _, gold in batch])
    seconds = time.perf_counter() - start
    print(f"  nemo-eval math_reward (isolated workers): {seconds:7.2f} s  {len(rows) / seconds:8.1f} rewards/s")
    reward.close()
    if args.server:
        through_server(rows, warm, args.batch, seconds)
    if args.skip_math_verify:
        return
    math_verify_verdicts(warm)   # warmed up on the same untimed batch
    start = time.perf_counter()
    theirs = math_verify_verdicts([(text, gold) for text, gold in rows])
    their_seconds = time.perf_counter() - start
    agree = sum(float(a) == float(b) for a, b in zip(ours, theirs))
    print(f"  math-verify (in-process, sequential):     {their_seconds:7.2f} s  {len(rows) / their_seconds:8.1f} rewards/s")
    print(f"  ratio {their_seconds / seconds:.2f}x  agreement {100 * agree / len(rows):.2f}%")


if __name__ == "__main__":
    main()
