"""``nemo-eval reward-server``: the reward functions over HTTP, for trainers in another process or machine.

    nemo-eval reward-server --port 8321 [--host 127.0.0.1] [--sandbox URL] [--timeout 10] [--benchmark NAME]

``POST /score`` takes one batch as JSON and answers with one score per completion::

    {"reward": "math",                      # math | format | code | compute_score | a weighted sum:
                                            #   {"math": 1.0, "format": 0.2}
     "completions": ["... \\\\boxed{4}", [{"role": "assistant", "content": "..."}]],
     "columns": {"answer": ["4", "5"]}}     # dataset columns, one value per completion (as TRL passes them)
    -> 200 {"scores": [1.0, 0.0], "ungraded": 0}

``compute_score`` takes the columns ``data_source``, ``ground_truth`` (and ``extra_info``), as veRL
names them. A score is null for a row that is not the reward's kind (no gold, no tests). ``ungraded``
counts the completions that could not be graded in this batch (they score 0).
A malformed request is ``400 {"error": "..."}``. ``GET /health`` answers ``{"status": "ok", "isolation":
"sandbox" | "bwrap" | "process"}``. The server is threaded; the graders' isolated workers are shared.
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Sequence

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError
from nemo_eval.rewards.code_rewards import CodeReward
from nemo_eval.rewards.combine import make_compute_score, weighted_sum
from nemo_eval.rewards.common import RewardWarning
from nemo_eval.rewards.format_rewards import FormatReward
from nemo_eval.rewards.math_rewards import MathReward

PROG = "nemo-eval reward-server"
MAX_BODY = 256 << 20


class Rewards:
    """The reward functions one server answers with."""

    def __init__(self, sandbox: Optional[str], timeout: float, benchmark: Optional[str], workers: int) -> None:
        self.math = MathReward(benchmark=benchmark, sandbox=sandbox, timeout=timeout, workers=workers)
        self.functions = {"math": self.math, "format": FormatReward(), "code": CodeReward(sandbox, timeout),
                          "compute_score": self._compute_score}
        self.verl = make_compute_score(sandbox, timeout)

    def _compute_score(self, prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float]:
        count = len(completions)
        return self.verl(columns.get("data_source"), list(completions), columns.get("ground_truth") or [None] * count,
                         columns.get("extra_info") or [None] * count)

    def score(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("completions"), list):
            raise ValueError('the body must be a JSON object with "completions": [...] (and "reward", "columns")')
        reward, columns = request.get("reward", "math"), request.get("columns") or {}
        if not isinstance(columns, dict):
            raise ValueError('"columns" must be an object of lists, one value per completion')
        if isinstance(reward, dict):
            parts = [(self._function(name), float(weight)) for name, weight in reward.items()]
            function = weighted_sum(*parts)
        else:
            function = self._function(reward)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RewardWarning)
            scores = function(prompts=request.get("prompts"), completions=request["completions"], **columns)
        for warning in caught:
            print(f"{PROG}: warning: {warning.message}", file=sys.stderr, flush=True)
        return {"scores": [None if value is None else float(value) for value in scores], "ungraded": _ungraded(caught)}

    def _function(self, name: Any):
        if name not in self.functions:
            raise ValueError(f"unknown reward {name!r}: use one of {', '.join(self.functions)} or a weighted sum object")
        return self.functions[name]


def _ungraded(caught: list) -> int:
    total = 0
    for warning in caught:
        text = str(warning.message)
        if "could not be graded" in text:
            total += int(text.split(": ", 1)[1].split(" of ", 1)[0])
    return total


def make_handler(rewards: Rewards) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:   # quiet: a trainer sends thousands of batches
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:   # noqa: N802 - the http.server name
            if self.path.rstrip("/") == "/health":
                self._send(200, {"status": "ok", "isolation": rewards.math.decider.isolation()})
            else:
                self._send(404, {"error": "not found: GET /health or POST /score"})

        def do_POST(self) -> None:   # noqa: N802
            if self.path.rstrip("/") != "/score":
                self._send(404, {"error": "not found: POST /score"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._send(400, {"error": f"a JSON body of 1 to {MAX_BODY} bytes is required"})
                return
            try:
                request = json.loads(self.rfile.read(length))
                self._send(200, rewards.score(request))
            except (ValueError, TypeError, KeyError, IndexError) as error:
                self._send(400, {"error": str(error)})

    return Handler


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(prog=PROG, description="Serve the reward functions (math, format, code, veRL compute_score) over "
                                           "HTTP: POST /score with a batch as JSON, one score per completion back.")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--sandbox", default=None, help="a sandbox service address; default: local isolated workers")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per item (default 10)")
    parser.add_argument("--benchmark", default=None, help="grade math with this benchmark's extraction settings")
    parser.add_argument("--workers", type=int, default=0, help="local math worker processes (default: one per core, up to 4)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536 or args.timeout <= 0 or args.workers < 0:
        raise UserError("--port must be 1-65535, --timeout > 0 and --workers >= 0")
    rewards = Rewards(args.sandbox, args.timeout, args.benchmark, args.workers)
    try:
        server = ThreadingHTTPServer((args.host, args.port), make_handler(rewards))
    except OSError as error:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({error.strerror}); pick another --port") from None
    server.daemon_threads = True
    isolation = rewards.math.decider.isolation()   # start the workers now, not on the first request
    print(f"{PROG}: listening on http://{args.host}:{args.port} (isolation: {isolation})", flush=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        thread.join()
    finally:
        server.shutdown()
        rewards.math.close()
    return 0


if __name__ == "__main__":
    from nemo_eval.errors import run_main

    raise SystemExit(run_main(PROG, main))
