"""``SandboxClient``: run code in the sandbox service over HTTP, many executions at once.

Connection pooling (one ``requests`` session with a pool sized to the concurrency), bounded
concurrency (``execute_many`` uses at most ``max_concurrency`` threads), retries on connection
errors and 5xx answers (the service restarting), patience with a busy service (``503`` with
``Retry-After``: every jail is running and its queue is full), and a :class:`SandboxUnavailable`
naming the address when the service cannot be reached.
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


class SandboxRefused(UserError):
    """The sandbox service answered the request with an error (a 4xx: the request itself is wrong)."""


def failed_result(message: str) -> dict[str, Any]:
    """A result in the service's format for an execution that could not be run at all."""
    return {"process_status": "error", "stdout": "", "stderr": message, "return_code": None,
            "stdout_truncated": False, "stderr_truncated": False, "wall_time": 0.0}


class SandboxClient:
    """Client for one sandbox service.

    Args:
        address: Base URL, e.g. ``http://127.0.0.1:6000``.
        max_concurrency: Executions in flight at once in :meth:`execute_many` (and pool size).
        connect_retries: Attempts on connection errors and 5xx answers before giving up.
        busy_wait: Seconds a call keeps retrying while the service answers "busy" (503 + Retry-After).
    """

    def __init__(self, address: str = "http://127.0.0.1:6000", max_concurrency: int = 16,
                 connect_retries: int = 5, busy_wait: float = 600.0) -> None:
        self.address = address.rstrip("/")
        self.max_concurrency = max_concurrency
        self.connect_retries = connect_retries
        self.busy_wait = busy_wait
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", None, timeout=10)

    def execute(self, code: str, language: str = "python", timeout: float = 10.0, std_input: str = "") -> dict[str, Any]:
        """Run one program; returns the service's result dict (``process_status``, ``stdout``, ...).

        Raises:
            SandboxUnavailable: the service cannot be reached (or stayed busy for ``busy_wait`` seconds).
            SandboxRefused: the service rejected the request (e.g. a lone surrogate in the code).
        """
        body = {"generated_code": code, "language": language, "timeout": timeout, "std_input": std_input}
        return self._call("POST", "/execute", body, timeout=timeout + 60)  # + time queued for a jail

    def execute_many(self, jobs: Iterable[dict[str, Any]], errors_as_results: bool = False) -> list[dict[str, Any]]:
        """Run many programs (each a dict of :meth:`execute` arguments) concurrently, results in order.

        Args:
            jobs: Keyword arguments of :meth:`execute`, one dict per program.
            errors_as_results: Instead of raising on the first job that cannot be run, give that job a
                result with ``process_status: "error"`` and the reason in ``stderr`` (graders use this, so
                that one bad item never costs the others their grade).
        """
        def run(job: dict[str, Any]) -> dict[str, Any]:
            if not errors_as_results:
                return self.execute(**job)
            try:
                return self.execute(**job)
            except UserError as exc:
                return {**failed_result(str(exc)), "sandbox_unavailable": isinstance(exc, SandboxUnavailable)}

        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(run, jobs))

    def _call(self, method: str, path: str, body: Optional[dict], timeout: float) -> dict[str, Any]:
        last: Optional[Exception] = None
        attempt = 0
        busy_until = time.monotonic() + self.busy_wait
        while attempt < self.connect_retries:
            try:
                response = self.session.request(method, self.address + path, json=body, timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:  # both are worth another try
                last = exc
                attempt += 1
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if response.status_code == 503 and "Retry-After" in response.headers and time.monotonic() < busy_until:
                time.sleep(_retry_after(response.headers["Retry-After"]))  # busy, not broken: wait our turn
                continue
            if response.status_code >= 500:
                last = RuntimeError(f"HTTP {response.status_code}: {_error_text(response)}")
                attempt += 1
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if response.status_code != 200:
                raise SandboxRefused(f"the sandbox at {self.address} refused the request: {_error_text(response)}")
            return response.json()
        raise SandboxUnavailable(f"cannot reach the sandbox at {self.address} ({type(last).__name__}: {last}); "
                                 "start one with: nemo-eval sandbox start (or set the sandbox address)")

    def close(self) -> None:
        self.session.close()


def _retry_after(value: str) -> float:
    try:
        return min(5.0, max(0.05, float(value)))
    except ValueError:
        return 1.0


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:300]
    except ValueError:
        return response.text.strip()[:300]
