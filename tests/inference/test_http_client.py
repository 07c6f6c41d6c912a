"""The asyncio HTTP client against real sockets: keep-alive, chunked bodies, broken servers."""

from __future__ import annotations

import asyncio

import pytest

from nemo_eval.inference.http_client import HttpClient, TransportError


async def _serve(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def test_keep_alive_reuses_one_connection_and_reads_chunked_bodies():
    connections = []

    async def handler(reader, writer):
        connections.append(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request.startswith(b"POST"):
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def scenario():
        server, port = await _serve(handler)
        client = HttpClient(f"http://127.0.0.1:{port}/v1")
        first = await client.request("GET", "/models", timeout=5)
        second = await client.request("POST", "/chat/completions", b"{}", timeout=5)
        third = await client.request("GET", "/models", timeout=5)
        await client.aclose()
        server.close()
        return first, second, third

    first, second, third = asyncio.run(scenario())
    assert (first.status, first.body) == (200, b"ok")
    assert second.body == b"hello, world"
    assert third.body == b"ok"
    assert len(connections) == 1, "requests share one keep-alive connection"


def test_server_closing_an_idle_connection_is_survived():
    async def handler(reader, writer):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # closes without saying Connection: close

    async def scenario():
        server, port = await _serve(handler)
        client = HttpClient(f"http://127.0.0.1:{port}")
        results = [await client.request("GET", "/x", timeout=5) for _ in range(3)]
        server.close()
        return results

    assert [r.body for r in asyncio.run(scenario())] == [b"ok"] * 3


@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", b""])
def test_broken_responses_are_transport_errors(reply):
    async def handler(reader, writer):
        await _read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def scenario():
        server, port = await _serve(handler)
        client = HttpClient(f"http://127.0.0.1:{port}")
        try:
            await client.request("GET", "/x", timeout=5)
        finally:
            server.close()

    with pytest.raises(TransportError):
        asyncio.run(scenario())


def test_timeout_and_refused_connection():
    async def handler(reader, writer):
        await asyncio.sleep(10)

    async def scenario():
        server, port = await _serve(handler)
        client = HttpClient(f"http://127.0.0.1:{port}")
        with pytest.raises(TransportError, match="within 0.2 s"):
            await client.request("GET", "/x", timeout=0.2)
        server.close()
        refused = HttpClient("http://127.0.0.1:9")
        with pytest.raises(TransportError, match="cannot connect"):
            await refused.request("GET", "/x", timeout=5)

    asyncio.run(scenario())


def test_interim_1xx_responses_are_skipped():
    async def handler(reader, writer):
        try:
            for n in range(2):
                await _read_request(reader)
                body = f"answer-{n}".encode()
                writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                             b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def scenario():
        server, port = await _serve(handler)
        client = HttpClient(f"http://127.0.0.1:{port}")
        results = [await client.request("GET", "/x", timeout=5) for _ in range(2)]
        server.close()
        return results

    assert [(r.status, r.body) for r in asyncio.run(scenario())] == [(200, b"answer-0"), (200, b"answer-1")]
