"""Sandbox throughput and latency against plain subprocess execution, measured in the same run.

For a trivial program and a small CPU-bound one: executions/s and p50/p99 latency through the
sandbox service (each available mode, ``--workers`` warm jails, a client pool of the same size) next
to ``subprocess.run([python3, "-c", code])`` in a thread pool of the same size; the ratio says what
isolation costs. The runners take turns in ``--rounds`` rounds, so a load spike on a shared machine
hits all of them alike. Then the same trivial program with ``--burst`` (200) requests in flight at
once: latency p50/p99 for each, and how long ``/health`` took meanwhile (the slowest of its probes).
Needs root and bubblewrap for bwrap mode; docker mode is measured when an engine and the image
(``nemo-eval sandbox build --make-base``) are there.
Usage: ``sudo python perf/sandbox_throughput.py [--executions 300] [--workers 4] [--burst 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_eval.processes import free_port  # noqa: E402
from nemo_eval.sandbox import SandboxClient  # noqa: E402

PROGRAMS = {
    "trivial": "print(1)",
    "cpu-bound": "print(sum(i * i for i in range(300_000)))",
}


class Cell:
    """Latencies and busy time of one (program, runner) cell, gathered over interleaved rounds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.elapsed = 0.0

    def add_round(self, run_one, executions: int, concurrency: int) -> None:
        def timed(_: int) -> float:
            start = time.perf_counter()
            run_one()
            return time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            self.latencies += pool.map(timed, range(executions))
        self.elapsed += time.perf_counter() - start

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def line(self, name: str, base: "Cell | None" = None) -> str:
        latencies = sorted(self.latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        text = (f"{name:<26} {self.rate:7.1f} exec/s  p50 {statistics.median(latencies) * 1000:7.1f} ms  "
                f"p99 {p99 * 1000:7.1f} ms")
        return text + (f"   ratio {self.rate / base.rate:.2f}" if base else "")


def interleaved(runners: dict, executions: int, concurrency: int, rounds: int) -> dict[str, Cell]:
    """Each runner ``executions`` times in ``rounds`` rounds, taking turns, so that all see the same load."""
    cells = {name: Cell() for name in runners}
    for run_one in runners.values():
        run_one()  # warm up
    per_round = max(1, executions // rounds)
    for _ in range(rounds):
        for name, run_one in runners.items():
            cells[name].add_round(run_one, per_round, concurrency)
    return cells


def health_probe(url: str, stop: threading.Event, worst: list[float]) -> None:
    """Probe /health every 0.2 s until ``stop``; keep the slowest answer's time in ``worst[0]``."""
    while not stop.is_set():
        start = time.perf_counter()
        requests.get(url + "/health", timeout=60)
        worst[0] = max(worst[0], time.perf_counter() - start)
        stop.wait(0.2)


def start_service(mode: str, workers: int) -> tuple[subprocess.Popen, str] | None:
    """Start the service in ``mode``; None if that mode cannot run here (no engine, no image)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "sandbox", "start", "--mode", mode, "--port",
                             str(port), "--workers", str(workers)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    client = SandboxClient(url, connect_retries=1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"({mode} mode unavailable: {proc.stderr.read().strip().splitlines()[-1]})")
            return None
        try:
            client.health()
            return proc, url
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    proc.kill()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per measurement")
    parser.add_argument("--burst", type=int, default=200, help="requests in flight at once for the latency test")
    args = parser.parse_args()
    print(f"{args.executions} executions per cell in {args.rounds} interleaved rounds, {args.workers} at once "
          "(service workers = pool size)")
    services = {mode: start_service(mode, args.workers) for mode in ("bwrap", "docker")}
    services = {mode: service for mode, service in services.items() if service is not None}
    try:
        for name, code in PROGRAMS.items():
            runners = {"subprocess": lambda code=code: subprocess.run(["/usr/bin/python3", "-c", code],
                                                                      capture_output=True, check=True)}
            for mode, (_, url) in services.items():
                client = SandboxClient(url, max_concurrency=args.workers)
                runners[f"sandbox-{mode}"] = lambda client=client, code=code: client.execute(code, timeout=30)
            cells = interleaved(runners, args.executions, args.workers, args.rounds)
            for runner, cell in cells.items():
                print(f"{name:<10} " + cell.line(runner, None if runner == "subprocess" else cells["subprocess"]))
        total = 3 * args.burst
        print(f"\n{args.burst} requests in flight ({total} trivial executions per cell), {args.workers} workers; "
              "/health probed every 0.2 s meanwhile:")
        runners = {"subprocess": lambda: subprocess.run(["/usr/bin/python3", "-c", "print(1)"], capture_output=True,
                                                         check=True)}
        for mode, (_, url) in services.items():
            client = SandboxClient(url, max_concurrency=args.burst)
            runners[f"sandbox-{mode}"] = lambda client=client: client.execute("print(1)", timeout=30)
        worst = {name: [0.0] for name in runners}
        cells = {}
        for name, run_one in runners.items():
            url = services[name.split("-", 1)[1]][1] if name != "subprocess" else None
            stop = threading.Event()
            probe = threading.Thread(target=health_probe, args=(url, stop, worst[name])) if url else None
            if probe:
                probe.start()
            try:
                cells[name] = interleaved({name: run_one}, total, args.burst, 1)[name]
            finally:
                stop.set()
                if probe:
                    probe.join()
        for name, cell in cells.items():
            slowest = f"   slowest /health {worst[name][0] * 1000:.0f} ms" if name != "subprocess" else ""
            print("burst      " + cell.line(name) + slowest)  # no ratio: the baseline runs 200 at once, not 4
    finally:
        for process, _ in services.values():
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
