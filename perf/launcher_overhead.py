"""Launcher overhead: ``nemo-eval eval`` end to end against a local OpenAI-compatible server.

Two measurements, each the best of ``--repeats`` runs with a fresh output directory:

- **fixed overhead**: ``nemo-eval eval`` of 10 GSM8K items (the items themselves take milliseconds
  against the instant test server, so the wall time is what the launcher adds: interpreter start-ups,
  the sandbox's start and stop, data checks, the summary);
- **full GSM8K**: the same command on all 1,319 test items (generation + grading in the sandbox).

The server is ``tests/support/openai_test_server.py`` (answers ``\\boxed{expected}`` for half of the items),
the sandbox the launcher's own (bwrap mode: run as root). When ``lm_eval`` (lm-evaluation-harness) is
importable, its ``gsm8k`` task runs on the same server, data read from the same mirror, with the same
10 / 1,319 items, for reference.

Usage: ``NEMO_EVAL_DATA_MIRROR=/path/to/mirror python perf/launcher_overhead.py [--repeats 3]
[--lm-eval-python /path/to/venv-with-lm-eval/bin/python]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_eval.processes import free_port, poll_until_healthy  # noqa: E402


def start_test_server(answers: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "support" / "openai_test_server.py"), "--port", str(port),
                             "--answers-jsonl", str(answers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    if poll_until_healthy(root + "/health", 10.0, proc.poll, interval=0.05) is None:
        return proc, root + "/v1"
    proc.kill()
    raise SystemExit("the test server did not start")


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds


def nemo_eval(url: str, out: Path, items: int, env: dict[str, str]) -> float:
    command = [sys.executable, "-m", "nemo_eval", "eval", "--server-address", url, "--model", "test-model",
               "--benchmarks", "gsm8k:0", "--output-dir", str(out), f"++max_samples={items}"]
    return timed(command, env)


LM_EVAL_TASK = """task: gsm8k_mirror
include: {include}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
training_split: null
validation_split: null
fewshot_split: null
num_fewshot: 0
"""


def lm_eval(python: str, url: str, out: Path, items: int, env: dict[str, str], mirror: Path) -> float:
    """lm-evaluation-harness's gsm8k task (chat completions, zero-shot, as ours) on the same server and data."""
    found = subprocess.run([python, "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    tasks = out / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "gsm8k_mirror.yaml").write_text(LM_EVAL_TASK.format(include=Path(found) / "tasks" / "gsm8k" / "gsm8k.yaml",
                                                                 data=mirror / "gsm8k" / "test.jsonl"))
    command = [python, "-m", "lm_eval", "--model", "local-chat-completions", "--model_args",
               f"model=test-model,base_url={url}/chat/completions,num_concurrent=64,max_retries=1,tokenizer_backend=None",
               "--tasks", "gsm8k_mirror", "--include_path", str(tasks), "--apply_chat_template",
               "--limit", str(items), "--output_path", str(out / "lm-eval")]
    return timed(command, {**env, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--lm-eval-python", default=None,
                        help="an interpreter with lm-eval installed (default: this one, when it has lm_eval)")
    args = parser.parse_args()
    mirror = os.environ.get("NEMO_EVAL_DATA_MIRROR")
    if not mirror:
        raise SystemExit("set NEMO_EVAL_DATA_MIRROR (the raw benchmark files)")
    work = Path(tempfile.mkdtemp(prefix="nemo-eval-launcher-bench-"))
    env = {**os.environ, "NEMO_EVAL_DATA_DIR": str(work / "data")}
    try:
        subprocess.run([sys.executable, "-m", "nemo_eval", "prepare-data", "gsm8k"], env=env, check=True,
                       capture_output=True)
        server, url = start_test_server(work / "data" / "gsm8k" / "test.jsonl")
        try:
            lm_python = args.lm_eval_python or (sys.executable if _importable("lm_eval") else None)
            have_lm_eval = not args.skip_lm_eval and lm_python is not None
            for items in (10, 1319):
                ours = min(nemo_eval(url, work / f"ours-{items}-{n}", items, env) for n in range(args.repeats))
                line = f"nemo-eval eval, {items:>5} GSM8K items: {ours:6.2f} s"
                if items == 1319:
                    accuracy = json.loads((work / "ours-1319-0" / "metrics.json").read_text())["gsm8k"]["greedy"]["accuracy"]
                    line += f" (accuracy {accuracy})"
                if have_lm_eval:
                    theirs = min(lm_eval(lm_python, url, work / f"lm-{items}-{n}", items, env, Path(mirror))
                                 for n in range(args.repeats))
                    line += f"; lm-eval: {theirs:6.2f} s ({theirs / ours:.2f}x ours)"
                print(line, flush=True)
            if not have_lm_eval:
                print("(lm_eval is not installed: pip install lm-eval, or --lm-eval-python PATH, to compare)")
        finally:
            server.terminate()
            server.wait(10)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    main()
