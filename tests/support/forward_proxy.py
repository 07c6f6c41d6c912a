"""A small, real HTTP forward proxy for tests: CONNECT tunnels (https) and absolute-URI requests (http).

Run: ``python tests/support/forward_proxy.py --port 3128 --log requests.log [--user u --password p]``

Every request is appended to the log as one line: ``CONNECT host:port`` or ``<METHOD> <absolute URL>``.
With ``--user``/``--password`` it answers 407 unless ``Proxy-Authorization: Basic`` matches.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from urllib.parse import urlsplit


class Proxy:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.expected = None
        if args.user is not None:
            self.expected = "Basic " + base64.b64encode(f"{args.user}:{args.password or ''}".encode()).decode()

    def log(self, line: str) -> None:
        with open(self.args.log, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def authorized(self, head: bytes) -> bool:
        if self.expected is None:
            return True
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "proxy-authorization" and value.strip() == self.expected:
                return True
        return False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                if not self.authorized(head):
                    self.log(f"DENIED {method} {target}")
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    return
                self.log(f"{method} {target}")
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
                    return
                url = urlsplit(target)
                length = 0
                lines = head.decode("latin-1").split("\r\n")
                kept = []
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                    if line and not line.lower().startswith("proxy-authorization:"):
                        kept.append(line)
                body = await reader.readexactly(length) if length else b""
                if upstream is None:
                    upstream = await asyncio.open_connection(url.hostname, url.port or 80)
                path = url.path + (f"?{url.query}" if url.query else "")
                upstream[1].write(f"{method} {path} {version}\r\n".encode("latin-1")
                                  + "\r\n".join(kept).encode("latin-1") + b"\r\n\r\n" + body)
                response = await upstream[0].readuntil(b"\r\n\r\n")
                size = 0
                for line in response.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        size = int(line.split(":", 1)[1])
                writer.write(response + (await upstream[0].readexactly(size) if size else b""))
                await writer.drain()
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    asyncio.run(main(parser.parse_args()))
