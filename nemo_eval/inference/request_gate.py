"""What decides when a request may be sent: rate limits, adaptive concurrency, pauses after 429.

Hosted APIs limit requests per minute and tokens per minute and answer 429 past them. Sending at a
fixed concurrency against such a limit ends in retry storms: every worker hits the limit, waits the
same Retry-After, and hits it again together. A :class:`RequestGate` stands in front of every attempt:

- **rate limits** (``max_requests_per_minute``, ``max_tokens_per_minute``): token buckets holding one
  second of their rate. A request takes one request token and its estimated tokens (prompt characters
  / 4 + the mean completion so far); the estimate is corrected from the response's ``usage``. Within one
  launcher run the buckets are shared by all its generation steps against the same endpoint (a small
  state file under the temp dir, locked with ``flock``), so two steps together stay under the limit;
- **adaptive concurrency** (on by default for existing endpoints, off for servers nemo-eval launches):
  additive increase, multiplicative decrease. The number of requests in flight starts at 8 and grows by
  one after each window of clean answers; a 429/503 or a timeout halves it (once per window). A 429
  also caps the request rate at a little under the rate answers were coming back, which then grows
  after each quarter second's worth of clean answers (3% in the 3 s after a cut, 10% later), so a run
  settles near the provider's rate, probing past it rarely, instead of oscillating into storms;
- **pauses**: a 429 with Retry-After holds every request of the step until then, not just the one
  that got it.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from nemo_eval.children import RUN_ID_ENV

CHARS_PER_TOKEN = 4  # a rough estimate for English text with BPE tokenizers; corrected from usage
START_CONCURRENCY = 8
RATE_STEP_SECONDS = 0.25  # the rate cap grows by RATE_GROWTH after each quarter-second's worth of clean answers
RATE_GROWTH = 1.1
GENTLE_GROWTH = 1.01  # ... and by this much in the GENTLE_SECONDS after a cut
GENTLE_SECONDS = 5.0
CUT = 0.9  # a 429 caps the rate at this share of the rate answers were coming back at
MAX_PAUSE = 60.0


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up; takes may go into debt when the bucket is full."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def _refill(self, state: tuple[float, float], now: float) -> float:
        tokens, stamp = state
        return min(self.capacity, tokens + (now - stamp) * self.rate)

    def _take(self, state: tuple[float, float], amount: float, now: float) -> tuple[tuple[float, float], float]:
        tokens = self._refill(state, now)
        if tokens >= min(amount, self.capacity):  # a request bigger than the bucket goes when it is full
            return (tokens - amount, now), 0.0
        return (tokens, now), (min(amount, self.capacity) - tokens) / self.rate

    def take(self, amount: float) -> float:
        """Take ``amount`` and return 0, or take nothing and return the seconds to wait before trying again."""
        (self.tokens, self.stamp), wait = self._take((self.tokens, self.stamp), amount, time.monotonic())
        return wait

    def give_back(self, amount: float) -> None:
        """Correct an estimate: positive returns tokens, negative takes more (the bucket may go into debt)."""
        self.tokens = min(self.capacity, self.tokens + amount)


class SharedTokenBucket(TokenBucket):
    """A :class:`TokenBucket` whose state lives in a file, shared by every process that opens the same path.

    Times are wall-clock (``time.time``) so that processes agree on them.
    """

    def __init__(self, rate: float, capacity: float, path: Path) -> None:
        super().__init__(rate, capacity)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def _update(self, change) -> float:
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                saved = json.loads(handle.read() or "null")
                state = (float(saved[0]), float(saved[1]))
            except (ValueError, TypeError, IndexError, KeyError):
                state = (self.capacity, time.time())
            state, result = change(state, time.time())
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(state))
            return result

    def take(self, amount: float) -> float:
        return self._update(lambda state, now: self._take(state, amount, now))

    def give_back(self, amount: float) -> None:
        self._update(lambda state, now: ((min(self.capacity, self._refill(state, now) + amount), now), 0.0))


def _bucket(rate_per_minute: float, shared_key: Optional[str], kind: str) -> TokenBucket:
    per_second = rate_per_minute / 60.0
    if shared_key is None:
        return TokenBucket(per_second, per_second)
    digest = hashlib.sha256(f"{shared_key}\x1f{kind}\x1f{rate_per_minute}".encode()).hexdigest()[:24]
    folder = Path(tempfile.gettempdir()) / f"nemo-eval-limits-{os.getuid()}"
    return SharedTokenBucket(per_second, per_second, folder / f"{digest}.json")


@dataclass
class GateStats:
    """What the progress bar and the summary report."""

    throttled: int = 0  # 429/503 answers
    timeouts: int = 0
    waited_seconds: float = 0.0  # time spent waiting for rate limits and pauses


class RequestGate:
    """Admission of request attempts.

    Args:
        max_concurrency: Never more requests in flight than this.
        adaptive: Adapt concurrency and rate to 429s and timeouts (else: always ``max_concurrency``).
        requests_per_minute: Request rate limit (None: none).
        tokens_per_minute: Token rate limit, prompt + completion (None: none).
        shared_key: Share the rate-limit buckets with other processes using the same key (the run id and
            endpoint); None keeps them in this process.
        max_tokens: The request's ``max_tokens``, bounding the completion estimate.
    """

    def __init__(self, max_concurrency: int, adaptive: bool = False, requests_per_minute: Optional[float] = None,
                 tokens_per_minute: Optional[float] = None, shared_key: Optional[str] = None,
                 max_tokens: Optional[int] = None) -> None:
        self.maximum = max_concurrency
        self.adaptive = adaptive
        self.limit = min(START_CONCURRENCY, max_concurrency) if adaptive else max_concurrency
        self.in_flight = 0
        self.requests = _bucket(requests_per_minute, shared_key, "requests") if requests_per_minute else None
        self.tokens = _bucket(tokens_per_minute, shared_key, "tokens") if tokens_per_minute else None
        self.rate: Optional[float] = None  # adaptive request-rate cap (per second), set by the first 429
        self._next_send = 0.0
        self._paused_until = 0.0
        self._clean = 0
        self._last_cut = 0.0
        self._answers: deque[float] = deque()
        self._completion_mean = float(min(max_tokens or 512, 512))
        self._completions = 0
        self._changed = asyncio.Condition()
        self.stats = GateStats()

    def estimate(self, prompt_chars: int) -> float:
        """Tokens a request is expected to use: its prompt, and a completion as long as the mean so far."""
        return prompt_chars / CHARS_PER_TOKEN + self._completion_mean

    async def acquire(self, estimated_tokens: float = 0.0) -> None:
        """Wait until one more attempt may be sent (a slot, the rate limits, no pause), and take it."""
        loop = asyncio.get_running_loop()
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        try:
            while True:
                now = loop.time()
                wait = max(self._paused_until - now, self._next_send - now if self.rate else 0.0)
                if wait <= 0 and self.requests is not None:
                    wait = self.requests.take(1)
                if wait <= 0 and self.tokens is not None:
                    wait = self.tokens.take(estimated_tokens)
                    if wait > 0 and self.requests is not None:
                        self.requests.give_back(1)
                if wait <= 0:
                    if self.rate:
                        self._next_send = max(self._next_send, now) + 1.0 / self.rate
                    return
                self.stats.waited_seconds += wait
                await asyncio.sleep(wait)
        except BaseException:
            await self._free()
            raise

    async def _free(self) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    async def release(self, outcome: str, estimated_tokens: float = 0.0, used_tokens: Optional[float] = None,
                      completion_tokens: Optional[float] = None, retry_after: Optional[float] = None) -> None:
        """Give the slot back and learn from the answer.

        Args:
            outcome: ``ok`` (an answer, even an error one that is not about load), ``throttled`` (429/503),
                ``timeout`` (no answer in time, connection trouble).
            estimated_tokens: What :meth:`acquire` took from the token bucket.
            used_tokens: What the server reports it used (corrects the bucket), if it says.
            completion_tokens: Generated tokens, for later estimates.
            retry_after: The server's Retry-After, in seconds.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.tokens is not None:
            actual = used_tokens if used_tokens is not None else (estimated_tokens if outcome == "ok" else 0.0)
            if actual != estimated_tokens:
                self.tokens.give_back(estimated_tokens - actual)
        if completion_tokens is not None:
            self._completions += 1
            self._completion_mean += (completion_tokens - self._completion_mean) / min(self._completions, 100)
        if outcome == "throttled":
            self.stats.throttled += 1
            if retry_after is not None:
                self._paused_until = max(self._paused_until, now + min(retry_after, MAX_PAUSE))
        elif outcome == "timeout":
            self.stats.timeouts += 1
        if self.adaptive:
            self._adapt(outcome, now)
        await self._free()

    def _adapt(self, outcome: str, now: float) -> None:
        if outcome == "ok":
            self._answers.append(now)
            while self._answers and self._answers[0] < now - 2.0:
                self._answers.popleft()
            self._clean += 1
            if self.rate is not None and self._clean % max(1, int(self.rate * RATE_STEP_SECONDS)) == 0:
                # gently just after a cut (probing near the limit), faster once clean for a while
                self.rate *= RATE_GROWTH if now - self._last_cut > GENTLE_SECONDS else GENTLE_GROWTH
            if self._clean >= self.limit:
                self._clean = 0
                self.limit = min(self.maximum, self.limit + 1)
            return
        self._clean = 0
        if now - self._last_cut < self._cut_interval():
            return  # one cut per window: the answers in flight were sent before the last one
        self._last_cut = now
        self.limit = max(1, self.limit // 2)
        if outcome == "throttled":
            observed = len(self._answers) / 2.0 if self._answers else 0.0
            current = self.rate if self.rate is not None else observed
            self.rate = max(0.5, CUT * min(current, observed) if observed else 0.5 * (current or 1.0))

    def _cut_interval(self) -> float:
        if self.rate:
            return max(0.5, self.limit / self.rate)
        return 0.5


def gate_for_server(server, base_url: str, max_concurrency: int, max_tokens: Optional[int],
                    launched: bool) -> RequestGate:
    """The gate of a step's requests to ``server`` (a ``ServerConfig``): adaptive unless the server was
    launched by nemo-eval or ``adaptive_concurrency`` says otherwise; rate limits shared with the other steps
    of the same launcher run (same run id) against the same endpoint."""
    adaptive = server.adaptive_concurrency if server.adaptive_concurrency is not None else not launched
    run_id = os.environ.get(RUN_ID_ENV)
    return RequestGate(max_concurrency, adaptive=adaptive, requests_per_minute=server.max_requests_per_minute,
                       tokens_per_minute=server.max_tokens_per_minute,
                       shared_key=f"{run_id}\x1f{base_url}" if run_id else None, max_tokens=max_tokens)
