"""Output directories for the viewer tests, and the real ``nemo-eval view`` process serving them.

:func:`write_run` writes graded generation files shaped exactly as ``generate`` + ``evaluate`` leave
them (including the ``.meta.json`` with its prompt record), from a list of per-item outcomes; the
metrics come from the real ``summarize-results`` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from helpers import run_cli

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
ODD_ID = 'q/7?&x=<b>"1"</b>#'  # an id that needs escaping in HTML and in URLs

PROMPT_RECORD = {
    "config": "generic/math", "system": "", "user": "Solve: {problem}\nPut the answer in \\boxed{{}}.",
    "examples": "", "stop": [], "template": None, "code_execution": None,
}


def item(index: int) -> dict:
    return {"id": ODD_ID if index == 7 else f"q{index}", "problem": f"What is {index} + {index}?",
            "expected_answer": str(2 * index)}


def graded_line(index: int, outcome: str, seed: Optional[int] = None) -> dict:
    """One graded line: outcome is correct, wrong, none (no answer), length (truncated), error, xss."""
    row = item(index)
    answer = {"correct": str(2 * index), "wrong": str(2 * index + 1)}.get(outcome)
    if outcome == "xss":
        generation = f"Here is some markup: {XSS} so the answer is \\boxed{{{2 * index + 1}}}."
        answer = str(2 * index + 1)
    elif answer is not None:
        generation = f"Adding {index} and {index} gives {answer}. The answer is \\boxed{{{answer}}}."
    elif outcome == "length":
        generation = "Let me think about this for a very long time and"
    else:
        generation = "I do not know."
    row.update(generation=None if outcome == "error" else generation, num_generated_tokens=len(generation.split()),
               finish_reason={"length": "length", "error": "error"}.get(outcome, "stop"))
    if outcome == "error":
        row["error"] = "server answered 500 six times"
    row.update(predicted_answer=answer, extraction_strategy="boxed" if answer else None,
               is_correct=outcome == "correct")
    return row


def write_run(out: Path, benchmark: str, outcomes: list[str], seeds: Optional[list[list[str]]] = None,
              summarize: bool = True) -> Path:
    folder = out / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    files = [("output-greedy.jsonl", outcomes, 0.0)] + [
        (f"output-rs{seed}.jsonl", flags, 0.7) for seed, flags in enumerate(seeds or [])]
    for name, flags, temperature in files:
        lines = [graded_line(i, outcome) for i, outcome in enumerate(flags)]
        (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
        meta = {"settings": {"input": {"benchmark": benchmark, "split": "test"}, "model": None,
                             "request": {"max_tokens": 512, "temperature": temperature, "top_p": 1.0}},
                "resolved_model": "test-model", "prompt_record": PROMPT_RECORD,
                "server": {"type": "openai", "base_url": "http://127.0.0.1:1/v1"}}
        (folder / f"{name}.meta.json").write_text(json.dumps(meta))
    if summarize:
        result = run_cli("summarize-results", str(out))
        assert result.returncode == 0, result.stderr
    return out


@contextmanager
def serve(*dirs: Path, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """``nemo-eval view DIR... --port 0`` as a real process; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "view", *map(str, dirs), "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"nemo-eval view did not start (exit {proc.wait()}): {url}")
        yield url.rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate, timeout: float = 15.0) -> bool:
    """Poll ``predicate`` until it is true (for files that appear while the viewer runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()
