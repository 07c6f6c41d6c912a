"""A small, real OpenAI-compatible HTTP server for tests, with fault injection.

Run: ``python tests/support/openai_test_server.py --port 8123 [--faults 429:0.2,500:0.1,hang:0.05,garbage:0.05,drop:0.05]``

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions``, ``GET /stats`` (request counts per prompt), ``POST /stats/reset``.
``--log-requests FILE`` appends every completion request (path and body) to FILE as JSON lines.

``--max-rps`` / ``--max-tpm`` rate-limit like a hosted API (token buckets holding ``--burst-seconds`` of
their rate; over the limit: 429 with the exact ``Retry-After``). ``usage`` counts whitespace-separated
words: ``prompt_tokens`` of the prompt text, ``completion_tokens`` of the answer.

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


class Bucket:
    """A token bucket: ``rate`` tokens per second, at most ``capacity`` saved up."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.stamp = capacity, time.monotonic()

    def take(self, amount: float) -> float:
        """Take ``amount`` and return 0, or return the seconds until it could be taken (taking nothing)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate


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
        burst = args.burst_seconds
        self.request_bucket = Bucket(args.max_rps, args.max_rps * burst) if args.max_rps else None
        self.token_bucket = Bucket(args.max_tpm / 60, args.max_tpm / 60 * burst) if args.max_tpm else None
        self.rate_limited = 0
        self.tokens_served = 0
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


def scripted_judgement(body: dict[str, Any]) -> str:
    """--script judge: compare the "Reference answer:" and "Predicted answer:" sections of a judge prompt the
    way a strict judge would: equal after dropping spaces, ``$`` and a trailing ``.0``, or equal as numbers.
    A predicted answer containing UNSURE gets an answer without a verdict (an invalid judgement)."""
    text = _prompt_text(body)
    reference = re.search(r"Reference answer:\n(.*?)\n\n", text, re.S)
    predicted = re.search(r"Predicted answer:\n(.*?)\n\n", text, re.S)
    if not reference or not predicted:
        return "I was not asked to compare two answers."
    a, b = (re.sub(r"[\s$]", "", m.group(1)).removesuffix(".0") for m in (reference, predicted))
    if "UNSURE" in b:
        return "The predicted answer is unclear to me."
    try:
        same = a == b or float(a) == float(b)
    except ValueError:
        same = False
    return f"Comparing {b} with {a}.\nJudgement: {'Yes' if same else 'No'}"


def is_correct(problem: str, seed: Any, rate: float) -> bool:
    """Whether the server answers ``problem`` (at ``seed``) right for a model with this correct-rate."""
    return _unit("correct", problem, seed) < rate


def make_answer(state: State, body: dict[str, Any]) -> str:
    if state.args.script == "code":
        return scripted_code_answer(body)
    if state.args.script == "judge":
        return scripted_judgement(body)
    text = _prompt_text(body)
    seed = body.get("seed")
    for problem, expected in state.answers.items():
        if problem and problem in text:
            if is_correct(problem, seed, state.rates.get(body.get("model"), state.args.correct_rate)):
                return stated_answer(state, expected)
            break
    numbers = re.findall(r"\d+", text)
    guess = int(_unit("guess", text, seed) * 1000) if not numbers else int(numbers[-1]) + int(_unit(text, seed) * 7)
    return stated_answer(state, str(guess))


def stated_answer(state: State, value: str) -> str:
    """The answer in the script's words: a box, or (minerva) Minerva's closing sentence after the box."""
    if state.args.script == "minerva":
        return f"We find $\\boxed{{{value}}}$.\nFinal Answer: The final answer is ${value}$. I hope it is correct."
    return f"Let me work it out step by step. The answer is \\boxed{{{value}}}."


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
                                 "faults": dict(self.state.faults), "rate_limited": self.state.rate_limited,
                                 "tokens_served": self.state.tokens_served})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.path == "/stats/reset":
            with self.state.lock:
                self.state.rate_limited = self.state.tokens_served = 0
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
        if self.state.args.log_requests:
            with self.state.lock, open(self.state.args.log_requests, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": self.path, "body": body}) + "\n")
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
        content, finish, matched = apply_stop(make_answer(self.state, body), body.get("stop"))
        tokens = len(content.split())
        prompt_tokens = len(_prompt_text(body).split())
        if self._rate_limited(prompt_tokens + tokens):
            return
        if self.state.args.delay:
            time.sleep(self.state.args.delay)
        if self.path == "/v1/chat/completions":
            choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": content, "finish_reason": finish}
        choice["stop_reason"] = matched
        with self.state.lock:
            self.state.completed[key] += 1
        self._send(200, {"id": f"cmpl-{key}", "object": "chat.completion", "model": body["model"], "choices": [choice],
                         "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                                   "total_tokens": prompt_tokens + tokens}})

    def _rate_limited(self, tokens: int) -> bool:
        """Answer 429 (with the exact Retry-After) when the request or token bucket is empty."""
        state = self.state
        with state.lock:
            wait = state.request_bucket.take(1) if state.request_bucket else 0.0
            if not wait and state.token_bucket:
                wait = state.token_bucket.take(tokens)
                if wait and state.request_bucket:
                    state.request_bucket.tokens += 1  # not served: give the request back
            if wait:
                state.rate_limited += 1
            else:
                state.tokens_served += tokens
        if wait:
            self._send(429, {"error": {"message": "rate limit reached"}}, {"Retry-After": f"{wait:.3f}"})
        return bool(wait)

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
    parser.add_argument("--max-rps", type=float, default=0.0,
                        help="requests per second allowed (a token bucket); above it: 429 with the exact Retry-After")
    parser.add_argument("--max-tpm", type=float, default=0.0,
                        help="tokens per minute allowed (prompt + completion, as usage reports them); above it: 429")
    parser.add_argument("--burst-seconds", type=float, default=1.0,
                        help="the buckets hold this many seconds of their rate (the burst allowed)")
    parser.add_argument("--answers-jsonl", default=None)
    parser.add_argument("--tls-cert", default=None, help="serve https with this certificate (PEM)")
    parser.add_argument("--tls-key", default=None, help="... and this private key (PEM)")
    parser.add_argument("--log-requests", default=None, help="append every request's path and JSON body to this file")
    parser.add_argument("--correct-rate", type=float, default=0.5)
    parser.add_argument("--model-correct-rate", action="append", default=[], metavar="NAME=RATE",
                        help="also serve model NAME, right on about RATE of the problems (repeatable)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer <key>'")
    parser.add_argument("--script", choices=("answer", "minerva", "code", "judge"), default="answer",
                        help="answer: a boxed answer; minerva: the box, then Minerva's closing sentence "
                             "(Final Answer: The final answer is $X$. I hope it is correct.); code: a python block first, "
                             "the answer after its output")
    args = parser.parse_args(argv)
    ThreadingHTTPServer.request_queue_size = 1024  # socketserver's default backlog of 5 drops the SYNs of a burst of
    # new connections, which the client then resends after 1 s: real servers (uvicorn: 2048) do not do that
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.state = State(args)  # type: ignore[attr-defined]
    server.serve_forever()


if __name__ == "__main__":
    main()
