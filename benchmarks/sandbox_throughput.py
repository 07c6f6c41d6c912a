"""Sandbox throughput and latency against plain subprocess execution, measured in the same run.

For a trivial program and a small CPU-bound one: executions/s and p50/p99 latency through the
sandbox service (each available mode, ``--workers`` warm jails, a client pool of the same size) next
to ``subprocess.run([python3, "-c", code])`` in a thread pool of the same size; the ratio says what
isolation costs. Then the same trivial program with ``--burst`` (200) requests in flight at once:
latency p50/p99 for both, and how long ``/health`` took meanwhile (the slowest of its probes).
Needs root and bubblewrap for bwrap mode; docker mode is measured when an engine and the image
(``nemo-eval sandbox build --make-base``) are there.
Usage: ``sudo python benchmarks/sandbox_throughput.py [--executions 300] [--workers 4] [--burst 200]``.
"""

from __future__ import annotations

import argparse
import socket
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

from nemo_eval.sandbox import SandboxClient  # noqa: E402

PROGRAMS = {
    "trivial": "print(1)",
    "cpu-bound": "print(sum(i * i for i in range(300_000)))",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(run_one, executions: int, concurrency: int) -> tuple[float, float, float]:
    """(executions/s, p50 ms, p99 ms) of ``run_one()`` called ``executions`` times, ``concurrency`` at once."""
    def timed(_: int) -> float:
        start = time.perf_counter()
        run_one()
        return time.perf_counter() - start

    run_one()  # warm up
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(timed, range(executions)))
    elapsed = time.perf_counter() - start
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return executions / elapsed, statistics.median(latencies) * 1000, p99 * 1000


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
    parser.add_argument("--burst", type=int, default=200, help="requests in flight at once for the latency test")
    args = parser.parse_args()
    print(f"{args.executions} executions per cell, {args.workers} at once (service workers = pool size)")
    services = {mode: start_service(mode, args.workers) for mode in ("bwrap", "docker")}
    try:
        for name, code in PROGRAMS.items():
            base = measure(lambda: subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, check=True),
                           args.executions, args.workers)
            print(f"{name:<10} subprocess     {base[0]:7.1f} exec/s  p50 {base[1]:6.1f} ms  p99 {base[2]:6.1f} ms")
            for mode, service in services.items():
                if service is None:
                    continue
                client = SandboxClient(service[1], max_concurrency=args.workers)
                jail = measure(lambda: client.execute(code, timeout=30), args.executions, args.workers)
                print(f"{name:<10} sandbox-{mode:<6} {jail[0]:7.1f} exec/s  p50 {jail[1]:6.1f} ms  "
                      f"p99 {jail[2]:6.1f} ms   ratio {jail[0] / base[0]:.2f}")
        total = 3 * args.burst
        print(f"\n{args.burst} requests in flight ({total} trivial executions), {args.workers} workers:")
        base = measure(lambda: subprocess.run(["/usr/bin/python3", "-c", "print(1)"], capture_output=True, check=True),
                       total, args.burst)
        print(f"burst      subprocess     {base[0]:7.1f} exec/s  p50 {base[1]:7.1f} ms  p99 {base[2]:7.1f} ms")
        for mode, service in services.items():
            if service is None:
                continue
            client = SandboxClient(service[1], max_concurrency=args.burst)
            stop, worst = threading.Event(), [0.0]
            probe = threading.Thread(target=health_probe, args=(service[1], stop, worst))
            probe.start()
            try:
                jail = measure(lambda: client.execute("print(1)", timeout=30), total, args.burst)
            finally:
                stop.set()
                probe.join()
            print(f"burst      sandbox-{mode:<6} {jail[0]:7.1f} exec/s  p50 {jail[1]:7.1f} ms  p99 {jail[2]:7.1f} ms  "
                  f"ratio {jail[0] / base[0]:.2f}   slowest /health {worst[0] * 1000:.0f} ms")
    finally:
        for service in services.values():
            if service is not None:
                service[0].terminate()
                service[0].wait()


if __name__ == "__main__":
    main()
