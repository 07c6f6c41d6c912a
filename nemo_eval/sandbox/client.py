"""``SandboxClient``: run code in the sandbox service over HTTP, many executions at once.

Connection pooling (one ``requests`` session with a pool sized to the concurrency), bounded
concurrency (``execute_many`` uses at most ``max_concurrency`` threads), retries on connection
errors (the service restarting, a worker recycling), and a :class:`SandboxUnavailable` naming the
address when the service cannot be reached.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Optional

import requests
from requests.adapters import HTTPAdapter

from nemo_eval.errors import UserError


class SandboxUnavailable(UserError):
    """The sandbox service cannot be reached."""


class SandboxClient:
    """Client for one sandbox service.

    Args:
        address: Base URL, e.g. ``http://127.0.0.1:6000``.
        max_concurrency: Executions in flight at once in :meth:`execute_many` (and pool size).
        connect_retries: Attempts on connection errors before giving up.
    """

    def __init__(self, address: str = "http://127.0.0.1:6000", max_concurrency: int = 16,
                 connect_retries: int = 5) -> None:
        self.address = address.rstrip("/")
        self.max_concurrency = max_concurrency
        self.connect_retries = connect_retries
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", None, timeout=10)

    def execute(self, code: str, language: str = "python", timeout: float = 10.0, std_input: str = "") -> dict[str, Any]:
        """Run one program; returns the service's result dict (``process_status``, ``stdout``, ...)."""
        body = {"generated_code": code, "language": language, "timeout": timeout, "std_input": std_input}
        return self._call("POST", "/execute", body, timeout=timeout + 60)  # + time queued for a worker

    def execute_many(self, jobs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run many programs (each a dict of :meth:`execute` arguments) concurrently, results in order."""
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(lambda job: self.execute(**job), jobs))

    def _call(self, method: str, path: str, body: Optional[dict], timeout: float) -> dict[str, Any]:
        last: Optional[Exception] = None
        for attempt in range(self.connect_retries):
            try:
                response = self.session.request(method, self.address + path, json=body, timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:  # both are worth another try
                last = exc
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if response.status_code >= 500:
                last = RuntimeError(f"HTTP {response.status_code}")
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if response.status_code != 200:
                raise UserError(f"the sandbox at {self.address} refused the request: {response.text.strip()[:300]}")
            return response.json()
        raise SandboxUnavailable(f"cannot reach the sandbox at {self.address} ({type(last).__name__}: {last}); "
                                 "start one with: nemo-eval sandbox start (or set the sandbox address)")

    def close(self) -> None:
        self.session.close()
