"""Talking to an OpenAI-compatible server: requests, retries with backoff, clear failures.

Retryable: 408, 409, 429 (honouring Retry-After), 5xx, timeouts, dropped connections and
malformed responses — exponential backoff with full jitter, up to ``max_retries``. Other 4xx
answers fail the item at once (400: e.g. prompt too long). 401/403 stop the whole run with a
message naming the API-key variable, since every other request would fail the same way.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Optional

from nemo_eval.errors import UserError
from nemo_eval.inference.config import ServerConfig
from nemo_eval.inference.http_client import HttpClient, Response, TransportError
from nemo_eval.inference.request_gate import RequestGate
from nemo_eval.inference.response_cache import ResponseCache
from nemo_eval.jsonl import encode_json

RETRYABLE_STATUS = {408, 409, 429}
AUTH_STATUS = {401, 403}
PROXY_AUTH_STATUS = 407
THROTTLE_STATUS = {429, 503}  # the server is overloaded or rate-limits us: slow down
THROTTLED_RETRIES_PER_RETRY = 5  # 429/503 retries allowed per ++server.max_retries (load is not the item's fault)


class ItemFailed(Exception):
    """One request failed for good (after retries, or with a non-retryable answer)."""


@dataclass
class Completion:
    text: str
    finish_reason: Optional[str]
    num_generated_tokens: Optional[int]
    reasoning: Optional[str] = None
    stop_reason: Optional[str] = None  # the stop string that ended it, when the server says (vLLM does)
    num_input_tokens: Optional[int] = None  # usage.prompt_tokens
    num_reasoning_tokens: Optional[int] = None  # usage.completion_tokens_details.reasoning_tokens
    request_seconds: Optional[float] = None  # wall time of the attempt that answered
    cached: bool = False  # answered from the response cache


def _retry_after(response: Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date; anything else is ignored and the normal backoff applies
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _error_text(response: Response) -> str:
    try:
        payload = json.loads(response.body)
        err = payload.get("error", payload) if isinstance(payload, dict) else payload
        message = err.get("message") if isinstance(err, dict) else err
        return " ".join(str(message).split())[:300]
    except (ValueError, AttributeError):
        return " ".join(response.body[:200].decode("utf-8", "replace").split())


class OpenAICompatClient:
    """Chat and completion requests against one base URL.

    Args:
        config: The server section of the generation config.
        base_url: Resolved base URL (``.../v1``).
    """

    def __init__(self, config: ServerConfig, base_url: str, gate: Optional[RequestGate] = None,
                 cache: Optional[ResponseCache] = None) -> None:
        self.config = config
        self.base_url = base_url
        self.gate = gate
        self.cache = cache
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.has_key = bool(key)
        try:
            self.http = HttpClient(base_url, headers=headers)
        except ValueError as exc:  # a malformed base URL or proxy setting
            raise UserError(str(exc)) from None
        self.retries_used = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    def _proxy_auth_error(self) -> UserError:
        proxy = self.http.proxy
        where = f"{proxy.hostname}:{proxy.port or 80}" if proxy is not None else "a proxy"
        return UserError(f"the proxy at {where} wants credentials (HTTP 407) for {self.base_url}: put them in the "
                         "proxy URL, e.g. HTTPS_PROXY=http://user:password@host:port")

    def _auth_error(self, response: Response) -> UserError:
        hint = (f"the key in ${self.config.api_key_env} was rejected" if self.has_key else
                f"no API key was sent: set ${self.config.api_key_env}, or name another variable with "
                "++server.api_key_env")
        return UserError(f"server at {self.base_url} answered HTTP {response.status} ({_error_text(response)}); {hint}")

    async def list_models(self) -> Optional[list[str]]:
        """Model ids the server offers; None if it has no /models endpoint.

        Raises:
            UserError: the server is unreachable or rejects the API key.
        """
        try:
            response = await self.http.request("GET", "/models", timeout=30)
        except TransportError as exc:
            raise UserError(f"cannot reach the server at {self.base_url} (GET {self.base_url}/models: {exc}); "
                            "is it running, and is ++server.base_url right?") from None
        if response.status in AUTH_STATUS:
            raise self._auth_error(response)
        if response.status == PROXY_AUTH_STATUS:
            raise self._proxy_auth_error()
        if response.status != 200:
            return None
        try:
            return [str(entry["id"]) for entry in json.loads(response.body)["data"]]
        except (ValueError, KeyError, TypeError):
            return None

    async def resolve_model(self, wanted: Optional[str]) -> str:
        """Check ``wanted`` against the server's models; default to its only model."""
        offered = await self.list_models()
        if offered is None:
            if wanted is None:
                raise UserError(f"the server at {self.base_url} does not list its models; name one with ++server.model")
            return wanted
        if wanted is None:
            if len(offered) == 1:
                return offered[0]
            raise UserError(f"the server at {self.base_url} offers several models; pick one with "
                            f"++server.model: {', '.join(offered)}")
        if wanted not in offered:
            raise UserError(f"model {wanted!r} is not served at {self.base_url}; it offers: {', '.join(offered) or 'nothing'}")
        return wanted

    async def complete(self, endpoint: str, body: dict[str, Any]) -> Completion:
        """POST one request (``chat`` or ``completions``), retrying what can pass.

        Every attempt goes through the client's :class:`RequestGate` when it has one (rate limits,
        adaptive concurrency, pauses after 429). 429/503 answers have their own, larger retry budget
        (``THROTTLED_RETRIES_PER_RETRY`` times ``max_retries``): being throttled is not the item's fault.

        Raises:
            ItemFailed: the request failed for good.
            UserError: authentication failed (fatal for the run).
        """
        path = "/chat/completions" if endpoint == "chat" else "/completions"
        payload = encode_json(body).encode("utf-8")
        key = self.cache.key(self.base_url + path, payload) if self.cache is not None else ""
        if self.cache is not None:
            stored = self.cache.get(key)
            if stored is not None:
                try:
                    completion = _parse_completion(endpoint, stored)
                    completion.cached = True
                    return completion
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    pass  # a damaged entry: ask the server (and store its answer again)
        config = self.config
        gate = self.gate
        estimate = gate.estimate(prompt_chars(body)) if gate is not None else 0.0
        attempt = throttled = 0
        while True:
            delay_hint: Optional[float] = None
            outcome, used, generated = "ok", None, None
            if gate is not None:
                await gate.acquire(estimate)
            start = time.monotonic()
            try:
                response = await self.http.request("POST", path, payload, timeout=config.request_timeout)
                if response.status == 200:
                    try:
                        completion = _parse_completion(endpoint, response.body)
                        completion.request_seconds = round(time.monotonic() - start, 3)
                        used, generated = _total_tokens(completion), completion.num_generated_tokens
                        if self.cache is not None:
                            self.cache.put(key, response.body)
                        return completion
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        problem = f"malformed response body ({type(exc).__name__}: {exc})"
                elif response.status in AUTH_STATUS:
                    raise self._auth_error(response)
                elif response.status == PROXY_AUTH_STATUS:
                    raise self._proxy_auth_error()
                elif response.status in RETRYABLE_STATUS or response.status >= 500:
                    problem = f"HTTP {response.status}: {_error_text(response)}"
                    delay_hint = _retry_after(response)
                    if response.status in THROTTLE_STATUS:
                        outcome = "throttled"
                else:
                    raise ItemFailed(f"HTTP {response.status}: {_error_text(response)}")
            except TransportError as exc:
                problem = str(exc)
                outcome = "timeout"
            finally:
                if gate is not None:
                    await gate.release(outcome, estimate, used, generated, delay_hint)
            if outcome == "throttled" and throttled < THROTTLED_RETRIES_PER_RETRY * max(config.max_retries, 1):
                throttled += 1  # retried without spending the item's retries
            elif attempt >= config.max_retries:
                raise ItemFailed(f"gave up after {attempt + throttled + 1} attempts; last error: {problem}")
            else:
                attempt += 1
            backoff = min(config.retry_max_delay, config.retry_base_delay * (2 ** (attempt + throttled - 1)))
            delay = random.uniform(0, backoff) if delay_hint is None else min(delay_hint, 600.0)
            self.retries_used += 1
            await asyncio.sleep(delay)


def prompt_chars(body: dict[str, Any]) -> int:
    if "messages" in body:
        return sum(len(str(m.get("content") or "")) for m in body["messages"] if isinstance(m, dict))
    return len(str(body.get("prompt") or ""))


def _total_tokens(completion: Completion) -> Optional[int]:
    if completion.num_input_tokens is None or completion.num_generated_tokens is None:
        return None
    return completion.num_input_tokens + completion.num_generated_tokens


def _parse_completion(endpoint: str, body: bytes) -> Completion:
    data = json.loads(body)
    choice = data["choices"][0]
    if endpoint == "chat":
        message = choice["message"]
        text = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
    else:
        text = choice["text"]
        reasoning = None
    if not isinstance(text, str):
        raise TypeError("generated text is not a string")
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        usage = {}
    details = usage.get("completion_tokens_details")
    reasoning_tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
    stop_reason = choice.get("stop_reason")
    return Completion(text=text, finish_reason=choice.get("finish_reason"),
                      num_generated_tokens=_count(usage.get("completion_tokens")),
                      reasoning=reasoning if isinstance(reasoning, str) else None,
                      stop_reason=stop_reason if isinstance(stop_reason, str) else None,
                      num_input_tokens=_count(usage.get("prompt_tokens")),
                      num_reasoning_tokens=_count(reasoning_tokens))


def _count(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
