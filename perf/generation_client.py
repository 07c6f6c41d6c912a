"""Generation client throughput and memory, against a baseline measured in the same run.

On a local server that answers instantly (node, one process; a Python asyncio server if node
is missing), send the same chat requests with:

- ``raw``: a minimal asyncio HTTP/1.1 load generator (precomputed request bytes, one
  keep-alive connection per concurrent slot) — the baseline;
- ``client``: nemo-eval's OpenAICompatClient (JSON encode, HTTP, parse, retry logic);
- ``generate``: the whole ``nemo-eval generate`` step as a user runs it (prompt building,
  progress bar, resumable output), on an input file; its rate is the one the step reports
  (from its first request to its last line written, without interpreter start-up);
- ``openai-sdk``: the ``openai`` package's AsyncOpenAI, for reference.

Prints requests/s and the ratio to ``raw`` at each concurrency, then the peak RSS of
``nemo-eval generate`` over 50,000 prompts. Usage: ``python perf/generation_client.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_eval.processes import free_port  # noqa: E402
BODY = {"model": "instant", "messages": [{"role": "user", "content": "What is 6 times 7? " * 8}],
        "max_tokens": 16, "temperature": 0.0}


PY_SERVER = r'''
import asyncio, sys
BODY = b'{"id":"c","object":"chat.completion","model":"instant","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is \\\\boxed{42}."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":7,"total_tokens":17}}'
MODELS = b'{"object":"list","data":[{"id":"instant","object":"model"}]}'
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            body = MODELS if b"/models" in head.split(b"\r\n", 1)[0] else BODY
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await server.serve_forever()
asyncio.run(main())
'''  # noqa: E501 - the server's canned response is one line


def start_server(port: int) -> tuple[subprocess.Popen, str]:
    if shutil.which("node"):
        proc, kind = subprocess.Popen(["node", str(REPO / "perf" / "instant_server.js"), str(port)]), "node"
    else:
        proc, kind = subprocess.Popen([sys.executable, "-c", PY_SERVER, str(port)]), "python-asyncio"
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, kind
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("instant server did not start") from None
            time.sleep(0.05)


async def raw_load(port: int, total: int, concurrency: int) -> float:
    """Baseline: the least a client can do per request."""
    payload = json.dumps(BODY).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    remaining = [total]

    async def slot() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while remaining[0] > 0:
            remaining[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(slot() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def our_client(port: int, total: int, concurrency: int) -> float:
    sys.path.insert(0, str(REPO))
    from nemo_eval.inference.config import ServerConfig
    from nemo_eval.inference.openai_api import OpenAICompatClient

    client = OpenAICompatClient(ServerConfig(), f"http://127.0.0.1:{port}/v1")
    remaining = [total]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await client.complete("chat", BODY)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = total / (time.perf_counter() - start)
    await client.aclose()
    return rate


async def openai_sdk(port: int, total: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    remaining = [total]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await client.chat.completions.create(**BODY)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = total / (time.perf_counter() - start)
    await client.close()
    return rate


def generate_step(port: int, total: int, concurrency: int, workdir: Path) -> tuple[float, float]:
    """Run ``nemo-eval generate`` on ``total`` prompts; return (requests/s, peak RSS in MiB)."""
    source = workdir / f"input-{total}.jsonl"
    with open(source, "w", encoding="utf-8") as handle:
        for i in range(total):
            handle.write(json.dumps({"id": str(i), "problem": f"What is {i} times 7? " * 4}) + "\n")
    output = workdir / f"out-{total}-{concurrency}.jsonl"
    for stale in workdir.glob(output.name + "*"):  # a finished output would make the run a no-op
        stale.unlink()
    command = [sys.executable, "-m", "nemo_eval", "generate", f"++input_file={source}", f"++output_file={output}",
               f"++server.base_url=http://127.0.0.1:{port}/v1", f"++max_concurrent_requests={concurrency}",
               "++inference.tokens_to_generate=16"]
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(r.stderr[-2000:])")
    out = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, cwd=REPO).stdout
    first, stderr = out.split("\n", 1)
    returncode, rss_kib = map(int, first.split())
    if returncode != 0:
        raise RuntimeError(f"nemo-eval generate failed with {returncode}: {stderr}")
    # the step's own summary line: "... generated N, ... in S s: R items/s, ..."
    rate = float(stderr.rsplit(" items/s", 1)[0].rsplit(" ", 1)[1])
    return rate, rss_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--rss-prompts", type=int, default=50000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument("--skip-sdk", action="store_true", help="leave out the (slow) openai SDK reference")
    args = parser.parse_args()
    port = free_port()
    server, kind = start_server(port)
    print(f"server: {kind}, one process, 127.0.0.1:{port}; {args.requests} chat requests per measurement, "
          f"best of {args.repeats}; {os.cpu_count()} cores")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.concurrency:
                best = {}
                for _ in range(args.repeats):
                    clients = [("raw", raw_load), ("client", our_client)] + ([] if args.skip_sdk else [("openai-sdk", openai_sdk)])
                    for name, fn in clients:
                        rate = asyncio.run(fn(port, args.requests, concurrency))
                        best[name] = max(best.get(name, 0.0), rate)
                    rate, _ = generate_step(port, args.requests, concurrency, Path(tmp))
                    best["generate"] = max(best.get("generate", 0.0), rate)
                for name in [n for n in ("raw", "client", "generate", "openai-sdk") if n in best]:
                    print(f"concurrency {concurrency:>4}  {name:<11} {best[name]:>8.0f} req/s   "
                          f"ratio to raw {best[name] / best['raw']:.2f}")
            rate, rss = generate_step(port, args.rss_prompts, 256, Path(tmp))
            print(f"nemo-eval generate, {args.rss_prompts} prompts at concurrency 256: {rate:.0f} req/s, "
                  f"peak RSS {rss:.0f} MiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
