"""A small HTTP/1.1 server on asyncio for the sandbox's JSON API. Standard library only.

One event loop serves every connection, so a slow or half-open client costs a buffer and a timer,
never a worker: ``/health`` is answered while any number of them hang and every jail is busy.
Requests are parsed strictly (request line, headers, ``Content-Length`` or chunked body, size
limits, ``Expect: 100-continue``); anything malformed gets a JSON ``400`` and the connection is
closed. Keep-alive and pipelining are supported; a request whose client goes away before it is
answered is cancelled.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Optional

REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    payload: dict
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 64 << 10
    max_body_bytes: int = 16 << 20
    request_timeout: float = 60.0  # to receive a whole request once its first byte (or the connection) arrived
    idle_timeout: float = 300.0  # a kept-alive connection with no request
    max_connections: int = 4096


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def encode_response(response: Response, keep_alive: bool) -> bytes:
    body = json.dumps(response.payload, ensure_ascii=False).encode("utf-8", "replace")
    head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
            "Content-Type: application/json", f"Content-Length: {len(body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    head += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _Connection(asyncio.Protocol):
    def __init__(self, server: "HttpServer") -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: Optional[asyncio.Transport] = None
        self.task: Optional[asyncio.Task] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.continued = False
        self.closing = False
        self.idle = False  # waiting for a next request on a kept-alive connection (the longer timeout)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        if len(self.server.connections) > self.server.limits.max_connections:
            self._fail(503, "too many connections; retry later")
            return
        self._arm(self.server.limits.request_timeout)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.server.connections.discard(self)
        self.closing = True
        if self.timer:
            self.timer.cancel()
        if self.task and not self.task.done():
            self.task.cancel()  # nobody is waiting for the answer any more

    def eof_received(self) -> bool:
        return False  # the client is gone (HTTP/1.1 clients do not half-close): connection_lost follows

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        if self.task is None:
            if self.idle:  # the next request started: it must now arrive in time
                self.idle = False
                self._arm(self.server.limits.request_timeout)
            self._next()
        elif len(self.buffer) > self.server.limits.max_header_bytes + self.server.limits.max_body_bytes:
            self.transport.pause_reading()  # pipelined data piling up: wait until the answer is out

    def _arm(self, seconds: float) -> None:
        if self.timer:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(seconds, self._timed_out)

    def _timed_out(self) -> None:
        if self.task is None and not self.closing:
            if self.buffer:
                self._fail(408, "the request did not arrive in time")
            else:
                self.closing = True
                self.transport.close()

    def _fail(self, status: int, message: str) -> None:
        self.closing = True
        self.transport.write(encode_response(Response(status, {"error": message}), keep_alive=False))
        self.transport.close()

    def _next(self) -> None:
        try:
            parsed = self._parse()
        except _BadRequest as exc:
            self._fail(exc.status, str(exc))
            return
        if parsed is None:
            return
        request, keep_alive = parsed
        if self.timer:
            self.timer.cancel()
            self.timer = None
        self.continued = False
        self.task = asyncio.ensure_future(self._answer(request, keep_alive))

    async def _answer(self, request: Request, keep_alive: bool) -> None:
        try:
            response = await self.server.handler(request)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001 - a bug: still a JSON answer, and logged
            self.server.log(f"internal error on {request.method} {request.path}: {type(exc).__name__}: {exc}")
            response = Response(500, {"error": f"internal error: {type(exc).__name__}"})
        if self.closing:
            return
        self.transport.write(encode_response(response, keep_alive))
        self.task = None
        if not keep_alive:
            self.closing = True
            self.transport.close()
            return
        self.transport.resume_reading()
        self.idle = not self.buffer
        self._arm(self.server.limits.idle_timeout if self.idle else self.server.limits.request_timeout)
        self._next()

    def _parse(self) -> Optional[tuple[Request, bool]]:
        limits = self.server.limits
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > limits.max_header_bytes:
                raise _BadRequest(431, "request headers too large")
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # tolerated blank lines before a request
            lines.pop(0)
        parts = lines[0].split(" ") if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or " " in name:
                raise _BadRequest(400, f"malformed header line {line[:80]!r}")
            key = name.lower()
            if key in headers and key in ("content-length", "transfer-encoding", "host"):
                raise _BadRequest(400, f"duplicate {name} header")
            headers[key] = value.strip()
        body_start = end + 4
        encoding = headers.get("transfer-encoding", "").lower()
        if encoding and encoding != "chunked":
            raise _BadRequest(400, f"unsupported Transfer-Encoding {encoding!r} (chunked or none)")
        if encoding and "content-length" in headers:
            raise _BadRequest(400, "both Content-Length and Transfer-Encoding")
        if headers.get("expect", "").lower() == "100-continue" and not self.continued:
            self.continued = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if encoding:
            decoded = self._chunked(body_start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit():
                raise _BadRequest(400, "malformed Content-Length")
            length = int(length_text)
            if length > limits.max_body_bytes:
                raise _BadRequest(413, f"request body larger than {limits.max_body_bytes} bytes")
            if len(self.buffer) < body_start + length:
                return None
            body, consumed = bytes(self.buffer[body_start:body_start + length]), body_start + length
        del self.buffer[:consumed]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return Request(method, target.split("?", 1)[0], headers, body), keep_alive

    def _chunked(self, start: int) -> Optional[tuple[bytes, int]]:
        body = bytearray()
        position = start
        while True:
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size_text = bytes(self.buffer[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size") from None
            if size < 0 or len(body) + size > self.server.limits.max_body_bytes:
                raise _BadRequest(413, f"request body larger than {self.server.limits.max_body_bytes} bytes")
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n\r\n", line_end)
                if trailer_end == line_end:
                    return bytes(body), line_end + 4
                if trailer_end < 0:
                    return None
                return bytes(body), trailer_end + 4
            chunk_start = line_end + 2
            if len(self.buffer) < chunk_start + size + 2:
                return None
            if self.buffer[chunk_start + size:chunk_start + size + 2] != b"\r\n":
                raise _BadRequest(400, "malformed chunk")
            body += self.buffer[chunk_start:chunk_start + size]
            position = chunk_start + size + 2


class HttpServer:
    """Serve ``handler`` on listening sockets until :meth:`close`."""

    def __init__(self, handler: Handler, limits: HttpLimits = HttpLimits(),
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.handler, self.limits, self.log = handler, limits, log
        self.connections: set[_Connection] = set()
        self.servers: list[asyncio.AbstractServer] = []

    async def serve(self, sock) -> None:
        loop = asyncio.get_running_loop()
        self.servers.append(await loop.create_server(lambda: _Connection(self), sock=sock))

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.connections):
            if connection.transport:
                connection.transport.close()
        for server in self.servers:
            await server.wait_closed()
