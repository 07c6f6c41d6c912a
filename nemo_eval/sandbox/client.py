"""``SandboxClient``: run code in the sandbox service over HTTP, many executions at once.

Standard library HTTP (``http.client``) with a pool of keep-alive connections sized to the
concurrency: a call costs a few hundred microseconds of client CPU, which matters when the
programs themselves take milliseconds. Bounded concurrency (``execute_many`` uses at most
``max_concurrency`` threads), retries on connection errors and 5xx answers (the service
restarting), patience with a busy service (``503`` with ``Retry-After``: every jail is running and
its queue is full), and a :class:`SandboxUnavailable` naming the address when the service cannot
be reached.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from nemo_eval.errors import UserError


class SandboxUnavailable(UserError):
    """The sandbox service cannot be reached."""


class SandboxRefused(UserError):
    """The sandbox service answered the request with an error (a 4xx: the request itself is wrong)."""


def failed_result(message: str) -> dict[str, Any]:
    """A result in the service's format for an execution that could not be run at all."""
    return {"process_status": "error", "stdout": "", "stderr": message, "return_code": None,
            "stdout_truncated": False, "stderr_truncated": False, "wall_time": 0.0}


class _Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> str:
        try:
            return str(self.json().get("error", ""))[:300]
        except (ValueError, AttributeError):
            return self.body.decode("utf-8", "replace").strip()[:300]


class _Connections:
    """Keep-alive connections to one server, reused across threads (at most ``size`` kept idle)."""

    def __init__(self, address: str, size: int) -> None:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"the sandbox address {address!r} must look like http://HOST:PORT")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (a reused one may have been closed by the server)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return kind(self.host, self.port), False

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class SandboxClient:
    """Client for one sandbox service.

    Args:
        address: Base URL, e.g. ``http://127.0.0.1:6000``.
        max_concurrency: Executions in flight at once in :meth:`execute_many` (and connections kept).
        connect_retries: Attempts on connection errors and 5xx answers before giving up.
        busy_wait: Seconds a call keeps retrying while the service answers "busy" (503 + Retry-After).
    """

    def __init__(self, address: str = "http://127.0.0.1:6000", max_concurrency: int = 16,
                 connect_retries: int = 5, busy_wait: float = 600.0) -> None:
        self.address = address.rstrip("/")
        self.max_concurrency = max_concurrency
        self.connect_retries = connect_retries
        self.busy_wait = busy_wait
        self._connections = _Connections(self.address, max_concurrency)

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

    def _send(self, method: str, path: str, payload: Optional[bytes], timeout: float) -> _Answer:
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        while True:
            connection, reused = self._connections.take()
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            try:
                connection.request(method, self._connections.prefix + path, body=payload, headers=headers)
                response = connection.getresponse()
                answer = _Answer(response.status, response.headers, response.read())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()
                if reused:  # the server closed an idle keep-alive connection: a fresh one, at no cost
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            if response.will_close:
                connection.close()
            else:
                self._connections.give_back(connection)
            return answer

    def _call(self, method: str, path: str, body: Optional[dict], timeout: float) -> dict[str, Any]:
        payload = None if body is None else json.dumps(body).encode("utf-8", "surrogatepass")
        last: Optional[Exception] = None
        attempt = 0
        busy_until = time.monotonic() + self.busy_wait
        while attempt < self.connect_retries:
            try:
                answer = self._send(method, path, payload, timeout)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out: worth another try
                last = exc
                attempt += 1
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if answer.status == 503 and "Retry-After" in answer.headers and time.monotonic() < busy_until:
                time.sleep(_retry_after(answer.headers["Retry-After"]))  # busy, not broken: wait our turn
                continue
            if answer.status >= 500:
                last = RuntimeError(f"HTTP {answer.status}: {answer.error()}")
                attempt += 1
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if answer.status != 200:
                raise SandboxRefused(f"the sandbox at {self.address} refused the request: {answer.error()}")
            try:
                return answer.json()
            except ValueError:
                last = RuntimeError("the answer is not JSON")
                attempt += 1
        kind = "timed out" if isinstance(last, socket.timeout) else type(last).__name__
        raise SandboxUnavailable(f"cannot reach the sandbox at {self.address} ({kind}: {last}); "
                                 "start one with: nemo-eval sandbox start (or set the sandbox address)")

    def close(self) -> None:
        self._connections.close()


def _retry_after(value: str) -> float:
    try:
        return min(5.0, max(0.05, float(value)))
    except ValueError:
        return 1.0
