"""A small, real OpenAI-compatible HTTP server for tests, with fault injection.

Run: ``python tests/support/openai_test_server.py --port 8123 [--faults 429:0.2,500:0.1,hang:0.05,garbage:0.05,drop:0.05]``

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions``, ``GET /stats`` (request counts per prompt), ``POST /stats/reset``.

Answers are deterministic functions of (prompt, seed): ``"... The answer is \\boxed{X}."``. With
``--answers-jsonl`` (lines with ``problem`` and ``expected_answer``) the answer is the expected
one for about ``--correct-rate`` of the problems, chosen by a hash, so metrics can be checked.
``--model-correct-rate NAME=RATE`` (repeatable) also serves model NAME, right on about RATE of the
problems (the same hash: a model with a higher rate is right on a superset of problems), so a sweep
over several model names on one server has known accuracies; by default only ``test-model`` is served.

Faults are decided per prompt and attempt: attempt k of a prompt fails with a fault drawn by
hash(prompt, k) for k < ``--max-faults-per-prompt``, so every prompt eventually succeeds while
every kind of fault is exercised. ``hang`` sleeps ``--hang-seconds`` before answering (past the
client's timeout); ``garbage`` answers 200 with a body that is not JSON; ``drop`` closes the
connection without answering; ``429`` carries ``Retry-After``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "test-model"


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.answers: dict[str, str] = {}
        if args.answers_jsonl:
            with open(args.answers_jsonl, encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    self.answers[row["problem"]] = str(row.get("expected_answer", ""))
        self.rates = {MODEL: args.correct_rate}
        for spec in args.model_correct_rate:
            name, _, rate = spec.rpartition("=")
            self.rates[name] = float(rate)
        self.fault_table: list[tuple[str, float]] = []
        for part in filter(None, args.faults.split(",")):
            kind, _, rate = part.partition(":")
            self.fault_table.append((kind, float(rate)))


def _unit(*parts: Any) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def prompt_key(body: dict[str, Any]) -> str:
    content = body.get("messages") if "messages" in body else body.get("prompt")
    return hashlib.sha1(json.dumps([content, body.get("seed")], sort_keys=True).encode()).hexdigest()[:16]


def _prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


OUTPUT_BLOCK = re.compile(r"```output\n(.*?)```\n", re.S)


def scripted_code_answer(body: dict[str, Any]) -> str:
    """--script code: write a python block (with a made-up output, as a model would without a tool);
    after a real output block, write the final answer, which holds a bare ``` fence (to exercise
    false stops on the code-end marker), continuing from whatever of it was already emitted."""
    text = _prompt_text(body)
    blocks = list(OUTPUT_BLOCK.finditer(text))
    if blocks:
        value = blocks[-1].group(1).strip()
        final = f"The code printed:\n```\n{value}\n```\nso the answer is \\boxed{{{value}}}."
        emitted = text[blocks[-1].end():]
        if final.startswith(emitted):
            return final[len(emitted):]
    a, b = len(text) % 50 + 2, 7
    return f"Let me compute it.\n```python\nprint({a} * {b})\n```\n```output\nFAKE\n```\nThe answer is \\boxed{{FAKE}}."


def apply_stop(content: str, stop: Any) -> tuple[str, str, Any]:
    """Cut at the earliest stop string, as vLLM does (it reports the match as stop_reason)."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    hits = [(content.find(s), s) for s in stops if s and s in content]
    if not hits:
        return content, "stop", None
    index, matched = min(hits)
    return content[:index], "stop", matched


def is_correct(problem: str, seed: Any, rate: float) -> bool:
    """Whether the server answers ``problem`` (at ``seed``) right for a model with this correct-rate."""
    return _unit("correct", problem, seed) < rate


def make_answer(state: State, body: dict[str, Any]) -> str:
    if state.args.script == "code":
        return scripted_code_answer(body)
    text = _prompt_text(body)
    seed = body.get("seed")
    for problem, expected in state.answers.items():
        if problem and problem in text:
            if is_correct(problem, seed, state.rates.get(body.get("model"), state.args.correct_rate)):
                return f"Let me work it out step by step. The answer is \\boxed{{{expected}}}."
            break
    numbers = re.findall(r"\d+", text)
    guess = int(_unit("guess", text, seed) * 1000) if not numbers else int(numbers[-1]) + int(_unit(text, seed) * 7)
    return f"Let me work it out step by step. The answer is \\boxed{{{guess}}}."


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-test-server/1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.state.args.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self._send(401, {"error": {"message": "invalid or missing API key"}})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/v1/") and not self._authorized():
            return
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in self.state.rates]})
        elif self.path == "/stats":
            with self.state.lock:
                self._send(200, {"attempts": dict(self.state.attempts), "completed": dict(self.state.completed),
                                 "faults": dict(self.state.faults)})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.path == "/stats/reset":
            with self.state.lock:
                self.state.attempts.clear()
                self.state.completed.clear()
                self.state.faults.clear()
            self._send(200, {"ok": True})
            return
        if not self._authorized():
            return
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "request body is not JSON"}})
            return
        if body.get("model") not in self.state.rates:
            self._send(404, {"error": {"message": f"model {body.get('model')!r} does not exist"}})
            return
        key = prompt_key(body)
        with self.state.lock:
            attempt = self.state.attempts[key]
            self.state.attempts[key] += 1
        fault = self._pick_fault(key, attempt)
        if fault:
            with self.state.lock:
                self.state.faults[fault] += 1
            if self._inject(fault):
                return
        if self.state.args.delay:
            time.sleep(self.state.args.delay)
        content, finish, matched = apply_stop(make_answer(self.state, body), body.get("stop"))
        tokens = len(content.split())
        if self.path == "/v1/chat/completions":
            choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": content, "finish_reason": finish}
        choice["stop_reason"] = matched
        with self.state.lock:
            self.state.completed[key] += 1
        self._send(200, {"id": f"cmpl-{key}", "object": "chat.completion", "model": body["model"], "choices": [choice],
                         "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}})

    def _pick_fault(self, key: str, attempt: int) -> str | None:
        if attempt >= self.state.args.max_faults_per_prompt:
            return None
        roll, edge = _unit("fault", key, attempt), 0.0
        for kind, rate in self.state.fault_table:
            edge += rate
            if roll < edge:
                return kind
        return None

    def _inject(self, fault: str) -> bool:
        """Act out a fault; True when the request is fully handled."""
        if fault == "429":
            self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": str(self.state.args.retry_after)})
        elif fault == "500":
            self._send(500, {"error": {"message": "internal error"}})
        elif fault == "badretry":  # a Retry-After that is neither seconds nor a date
            self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "later"})
        elif fault == "nullmsg":  # 200 with "message": null
            self._send(200, {"choices": [{"index": 0, "message": None, "finish_reason": "stop"}]})
        elif fault == "garbage":
            self._send(200, None, raw=b"<html>this is not json")
        elif fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
        elif fault == "hang":
            time.sleep(self.state.args.hang_seconds)
            self.close_connection = True
            self.connection.shutdown(2)
        else:
            return False
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults", default="", help="kind:rate list; kinds 429, 500, hang, garbage, drop, badretry, nullmsg")
    parser.add_argument("--max-faults-per-prompt", type=int, default=2)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--hang-seconds", type=float, default=3.0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--answers-jsonl", default=None)
    parser.add_argument("--correct-rate", type=float, default=0.5)
    parser.add_argument("--model-correct-rate", action="append", default=[], metavar="NAME=RATE",
                        help="also serve model NAME, right on about RATE of the problems (repeatable)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer <key>'")
    parser.add_argument("--script", choices=("answer", "code"), default="answer",
                        help="answer: a boxed answer; code: a python block first, the answer after its output")
    args = parser.parse_args(argv)
    ThreadingHTTPServer.request_queue_size = 1024  # socketserver's default backlog of 5 drops the SYNs of a burst of
    # new connections, which the client then resends after 1 s: real servers (uvicorn: 2048) do not do that
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)  # type: ignore[attr-defined]
    server.serve_forever()


if __name__ == "__main__":
    main()
