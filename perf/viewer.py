"""Viewer response times at 50,000 samples: ``nemo-eval view`` as a real process, timed over HTTP.

One run with a greedy file of ``--samples`` graded lines (generations of ~1,500 characters, a
realistic mix of verdicts). Timed requests, each the median of ``--repeats``:

- the first samples page asked the moment the viewer starts (the file is still being read and indexed,
  which the viewer does in the background as soon as it starts), and asked a few seconds after start
  (indexed); then pages: page 1, a deep page, each status filter, a text search, a search within a
  filter, one sample;
- baselines in the same run: parsing every line of the same file with ``json.loads`` in this
  process (what any viewer must do once), and a request for the static stylesheet (HTTP overhead).

Usage: ``python perf/viewer.py [--samples 50000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORDS = ("the answer is so we add then multiply each apple costs dollars total per day she he they").split()


def write_run(out: Path, count: int) -> Path:
    rng = random.Random(0)
    folder = out / "gsm8k"
    folder.mkdir(parents=True)
    path = folder / "output-greedy.jsonl"
    with open(path, "w") as handle:
        for i in range(count):
            roll = rng.random()
            answer = None if roll < 0.05 else str(rng.randint(0, 999))
            text = " ".join(rng.choice(WORDS) for _ in range(280)) + (f" The answer is \\boxed{{{answer}}}." if answer else "")
            row = {"id": f"test-{i}", "problem": f"Problem {i}: " + " ".join(rng.choice(WORDS) for _ in range(40)),
                   "expected_answer": str(rng.randint(0, 999)), "generation": text,
                   "num_generated_tokens": 350, "finish_reason": "length" if roll < 0.03 else "stop",
                   "predicted_answer": answer, "extraction_strategy": "boxed" if answer else None,
                   "is_correct": roll > 0.45}
            if 0.05 <= roll < 0.055:
                row["grading_error"] = "timeout"
            handle.write(json.dumps(row) + "\n")
    return path


def timed(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "run"
        path = write_run(root, args.samples)
        size = path.stat().st_size
        start = time.perf_counter()
        with open(path, "rb") as handle:
            for line in handle:
                json.loads(line)
        parse = time.perf_counter() - start
        proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "view", str(root), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        try:
            base = proc.stdout.readline().strip().rstrip("/")
            samples = lambda **q: f"{base}/samples?" + urllib.parse.urlencode({"run": "run", "benchmark": "gsm8k", **q})
            cold = timed(samples())  # at once: the background indexing started with the viewer is still running
            proc_warm = subprocess.Popen([sys.executable, "-m", "nemo_eval", "view", str(root), "--port", "0"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
            warm_base = proc_warm.stdout.readline().strip().rstrip("/")
            time.sleep(max(3.0, 4 * cold))  # a user opening the page a few seconds after starting the viewer
            first_warm = timed(warm_base + "/samples?run=run&benchmark=gsm8k")
            proc_warm.terminate()
            proc_warm.wait(timeout=10)
            static = statistics.median(timed(base + "/static/viewer.css") for _ in range(args.repeats))
            cases = {
                "page 1": samples(),
                "page 500": samples(page=500),
                "filter wrong": samples(status="wrong"),
                "filter no answer": samples(status="no_answer"),
                "filter truncated": samples(status="truncated"),
                "filter grading error": samples(status="grading_error"),
                "search 'problem 4999'": samples(q="problem 4999"),
                "search 'apple costs' + wrong, page 3": samples(q="apple costs", status="wrong", page=3),
                "search with no match": samples(q="zebra"),
                "one sample": f"{base}/sample?" + urllib.parse.urlencode({"run": "run", "benchmark": "gsm8k",
                                                                           "id": f"test-{args.samples // 2}"}),
            }
            print(f"{args.samples} samples, {size / 1e6:.0f} MB file; baselines: json.loads of every line "
                  f"{parse * 1000:.0f} ms, static file over HTTP {static * 1000:.1f} ms")
            print(f"{'request':40} {'ms':>8} {'x json parse':>13} {'x static':>9}")
            print(f"{'first page, asked at start (indexing)':40} {cold * 1000:8.0f} {cold / parse:13.2f} {cold / static:9.1f}")
            print(f"{'first page, asked seconds after start':40} {first_warm * 1000:8.1f} {first_warm / parse:13.3f} "
                  f"{first_warm / static:9.1f}")
            for name, url in cases.items():
                seconds = statistics.median(timed(url) for _ in range(args.repeats))
                print(f"{name:40} {seconds * 1000:8.1f} {seconds / parse:13.3f} {seconds / static:9.1f}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
