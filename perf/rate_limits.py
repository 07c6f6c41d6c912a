"""Generation against a rate-limited endpoint: wall time against the ideal ``items / rate``, and 429 share.

The endpoint is ``tests/support/openai_test_server.py --max-rps R`` (a token bucket holding one second of
its rate, 429 with the exact Retry-After above it, like a hosted API). ``nemo-eval generate`` sends
``--items`` GSM8K prompts with ``max_concurrent_requests=64``:

- ``adaptive``: defaults (adaptive concurrency and rate, no limit configured: the rate is unknown to it);
- ``rpm``: ``++server.max_requests_per_minute=60*R`` and adaptive concurrency off (the rate is known);
- ``fixed``: adaptive off and no limit: what every client without a limiter does (the baseline).

Time is the generation step's own (from its summary line), so interpreter start-up is left out.

Usage: ``NEMO_EVAL_DATA_MIRROR=/path/to/mirror python perf/rate_limits.py [--rates 20,40,100] [--items 300]``
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_eval.processes import free_port, poll_until_healthy  # noqa: E402

MODES = {"adaptive": [], "rpm": ["++server.adaptive_concurrency=false"], "fixed": ["++server.adaptive_concurrency=false"]}


def run(rate: float, items: int, mode: str, data_dir: Path) -> tuple[float, int, int, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(REPO / "tests/support/openai_test_server.py"), "--port", str(port),
                               "--max-rps", str(rate)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll_until_healthy(f"http://127.0.0.1:{port}/health", 20, server.poll)
        extra = list(MODES[mode]) + ([f"++server.max_requests_per_minute={60 * rate:g}"] if mode == "rpm" else [])
        with tempfile.TemporaryDirectory() as out:
            result = subprocess.run([sys.executable, "-m", "nemo_eval", "generate", "++benchmark=gsm8k",
                                     f"++output_file={out}/o.jsonl", f"++server.base_url=http://127.0.0.1:{port}/v1",
                                     f"++max_samples={items}", "++max_concurrent_requests=64", f"++data_dir={data_dir}",
                                     *extra], capture_output=True, text=True)
        seconds = float(re.search(r"in ([0-9.]+) s:", result.stderr).group(1)) if " in " in result.stderr else float("nan")
        failed = int(m.group(1)) if (m := re.search(r"(\d+) item\(s\) failed", result.stderr)) else 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as response:
            stats = json.loads(response.read())
        return seconds, stats["rate_limited"], sum(stats["completed"].values()), failed
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="20,40,100")
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        subprocess.run([sys.executable, "-m", "nemo_eval", "prepare-data", "gsm8k", "--data-dir", data],
                       check=True, capture_output=True)
        print(f"{'rate/s':>6} {'mode':>9} {'seconds':>8} {'ideal':>6} {'x ideal':>8} {'429s':>5} {'429 share':>9} {'failed':>6}")
        for rate in (float(r) for r in args.rates.split(",")):
            ideal = args.items / rate
            for mode in MODES:
                seconds, throttled, served, failed = run(rate, args.items, mode, Path(data))
                share = throttled / max(throttled + served, 1)
                print(f"{rate:6g} {mode:>9} {seconds:8.2f} {ideal:6.2f} {seconds / ideal:8.2f} {throttled:5d} "
                      f"{100 * share:8.1f}% {failed:6d}")


if __name__ == "__main__":
    main()
