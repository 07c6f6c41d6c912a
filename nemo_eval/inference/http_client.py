"""A small asyncio HTTP/1.1 client with keep-alive connection pooling, for JSON APIs.

Why not the ``openai`` SDK or a general client: generation sends thousands of small requests
and the per-request cost of the client decides throughput (see docs/performance.md for the
measurements). This client does only what an OpenAI-compatible API needs: GET/POST with a
JSON body, ``Content-Length`` or chunked responses, keep-alive, http and https, a timeout per
request, and forward proxies as every well-behaved client honours them: ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY`` (and the lower-case forms, which win), a CONNECT tunnel for https
targets and absolute-URI requests for http ones, ``user:password@`` in the proxy URL sent as
``Proxy-Authorization``. Errors surface as :class:`TransportError` (connection trouble, timeouts,
malformed responses), which callers may retry.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Optional
from urllib.parse import SplitResult, unquote, urlsplit

_MAX_HEADER_BYTES = 64 * 1024


class TransportError(Exception):
    """The request did not produce a complete HTTP response (retryable)."""


def proxy_for(scheme: str, host: str, port: int) -> Optional[SplitResult]:
    """The forward proxy the environment names for a URL (``*_PROXY`` minus ``NO_PROXY``), or None."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme)
    if not proxy:
        return None
    if urllib.request.proxy_bypass_environment(host, proxies) or \
            urllib.request.proxy_bypass_environment(f"{host}:{port}", proxies):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{scheme}_proxy={proxy!r}: only http:// forward proxies are supported "
                         "(an https target still goes through it encrypted, in a CONNECT tunnel)")
    return parts


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a broken socket must never raise
            pass


class HttpClient:
    """Keep-alive HTTP/1.1 client for one base URL.

    Args:
        base_url: Scheme, host, port and path prefix, e.g. ``http://127.0.0.1:8000/v1``.
        headers: Extra headers sent with every request (e.g. Authorization).
        max_idle_connections: How many idle connections to keep for reuse.
    """

    def __init__(self, base_url: str, headers: Optional[dict[str, str]] = None,
                 max_idle_connections: int = 1024) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must look like http(s)://host[:port][/path], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = (parts.scheme == "https" and self.port == 443) or (parts.scheme == "http" and self.port == 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.proxy = proxy_for(parts.scheme, self.host, self.port)
        proxy_auth = ""
        if self.proxy is not None and self.proxy.username is not None:
            token = base64.b64encode(f"{unquote(self.proxy.username)}:{unquote(self.proxy.password or '')}".encode())
            proxy_auth = f"Proxy-Authorization: Basic {token.decode()}\r\n"
        self._proxy_auth = proxy_auth
        # Through a proxy, plain http requests name the whole URL (and carry the proxy's credentials);
        # https requests go inside a CONNECT tunnel, where the proxy sees nothing of them.
        self._target = (f"http://{host_header}" if self.proxy is not None and self._ssl is None else "") + self.prefix
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if self.proxy is not None and self._ssl is None:
            extra += proxy_auth
        self._common = f"Host: {host_header}\r\nAccept: application/json\r\nAccept-Encoding: identity\r\n{extra}"
        self._idle: list[_Connection] = []
        self._max_idle = max_idle_connections
        self._deadlines: dict[asyncio.Task, float] = {}
        self._expired: set[asyncio.Task] = set()
        self._watchdog: Optional[asyncio.Task] = None
        self._watch_interval = 1.0

    def url(self, path: str) -> str:
        return self.base_url + path

    async def request(self, method: str, path: str, body: bytes | None = None,
                      timeout: float | None = None) -> Response:
        """Send one request and return the full response.

        Raises:
            TransportError: connection refused/reset, timeout, or a malformed response.
        """
        head = f"{method} {self._target}{path} HTTP/1.1\r\n{self._common}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        payload = (head + "\r\n").encode("latin-1") + (body or b"")
        if timeout is None:
            return await self._send(payload, method)
        # One watchdog per client cancels requests past their deadline: far cheaper than a
        # timer per request when hundreds are in flight (see docs/performance.md).
        task = asyncio.current_task()
        assert task is not None
        self._deadlines[task] = asyncio.get_running_loop().time() + timeout
        self._start_watchdog(timeout)
        try:
            return await self._send(payload, method)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            if hasattr(task, "uncancel") and task.uncancel() > 0:
                raise  # someone else cancelled the task too (shutdown): that cancellation wins
            raise TransportError(f"no complete response within {timeout:g} s") from None
        finally:
            self._deadlines.pop(task, None)

    def _start_watchdog(self, timeout: float) -> None:
        interval = min(1.0, max(0.02, timeout / 4))
        if self._watchdog is None or self._watchdog.done() or interval < self._watch_interval:
            if self._watchdog is not None and not self._watchdog.done():
                self._watchdog.cancel()
            self._watch_interval = interval
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._deadlines:
            await asyncio.sleep(self._watch_interval)
            now = loop.time()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    async def _send(self, payload: bytes, method: str) -> Response:
        # A pooled connection may have been closed by the server while idle; that shows up
        # before any response byte arrives, so one immediate retry on a fresh connection is safe.
        for attempt in range(2):
            reused = bool(self._idle) and attempt == 0
            conn = self._idle.pop() if reused else await self._connect()
            try:
                conn.writer.write(payload)
                response, keep_alive = await self._read_response(conn.reader, method)
            except (ConnectionError, asyncio.IncompleteReadError, EOFError) as exc:
                conn.close()
                if reused and isinstance(exc, (asyncio.IncompleteReadError, ConnectionError)) and \
                        not getattr(exc, "partial", b""):
                    continue
                raise TransportError(f"connection lost: {type(exc).__name__}: {exc}") from None
            except (asyncio.LimitOverrunError, ValueError, UnicodeDecodeError) as exc:
                conn.close()
                raise TransportError(f"malformed HTTP response: {exc}") from None
            except BaseException:
                conn.close()  # cancelled or timed out mid-response: the connection is unusable
                raise
            if keep_alive and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                conn.close()
            return response
        raise TransportError("connection lost twice")  # pragma: no cover - loop always returns/raises

    async def _connect(self) -> _Connection:
        if self.proxy is not None:
            return await self._connect_via_proxy()
        try:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self._ssl, limit=_MAX_HEADER_BYTES,
                server_hostname=self.host if self._ssl else None)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return _Connection(reader, writer)

    async def _connect_via_proxy(self) -> _Connection:
        proxy = self.proxy
        assert proxy is not None
        where = f"proxy {proxy.hostname}:{proxy.port or 80}"
        try:
            reader, writer = await asyncio.open_connection(proxy.hostname, proxy.port or 80, limit=_MAX_HEADER_BYTES)
        except OSError as exc:
            raise TransportError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        if self._ssl is None:
            return _Connection(reader, writer)
        connection = _Connection(reader, writer)
        try:
            authority = f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"
            writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{self._proxy_auth}\r\n".encode("latin-1"))
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.") or head[9:12] != b"200":
                status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
                raise TransportError(f"{where} refused the tunnel to {authority}: {status_line}")
            await _start_tls(reader, writer, self._ssl, self.host)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError) as exc:
            connection.close()
            raise TransportError(f"tunnel through {where} failed: {type(exc).__name__}: {exc}") from None
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[Response, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1."):
            raise ValueError(f"bad status line {head[:80]!r}")
        status = int(head[9:12])
        while 100 <= status < 200 and status != 101:  # interim responses (100 Continue, 103 Early Hints)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1."):
                raise ValueError(f"bad status line {head[:80]!r}")
            status = int(head[9:12])
        lower = head.lower()
        keep_alive = b"\r\nconnection: close" not in lower and not head.startswith(b"HTTP/1.0")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await _read_chunked(reader)
        else:
            start = lower.find(b"\r\ncontent-length:")
            if start >= 0:
                end = lower.index(b"\r\n", start + 17)
                body = await reader.readexactly(int(lower[start + 17:end]))
            else:
                body = await reader.read()
                keep_alive = False
        # The full header map is only built when someone needs it (errors, Retry-After).
        headers = {} if status == 200 else _parse_headers(head)
        reason = head[13:head.index(b"\r\n")].decode("latin-1")
        return Response(status, reason, headers, body), keep_alive

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self._idle:
            self._idle.pop().close()


async def _start_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext,
                     host: str) -> None:
    """Upgrade an open connection (a proxy tunnel) to TLS in place."""
    if hasattr(writer, "start_tls"):  # Python 3.11+
        await writer.start_tls(context, server_hostname=host)
        return
    loop = asyncio.get_running_loop()
    transport = writer.transport
    protocol = transport.get_protocol()
    secure = await loop.start_tls(transport, protocol, context, server_hostname=host)
    writer._transport = secure  # type: ignore[attr-defined]  # what 3.11's StreamWriter.start_tls does
    protocol._transport = secure  # type: ignore[attr-defined]


def _parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
