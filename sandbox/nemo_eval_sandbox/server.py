"""The sandbox service: an HTTP JSON API in front of a pool of warm jails. Standard library only.

API:
    POST /execute  {"generated_code": str, "language": "python"|"bash" (default python),
                    "timeout": seconds (default 10), "std_input": str (default "")}
        -> 200 {"process_status": "completed"|"timeout"|"memory_limit"|"disk_limit"|"error", "stdout",
                "stderr", "return_code", "stdout_truncated", "stderr_truncated", "wall_time"}
        -> 400 {"error": ...} for any malformed request
        -> 503 {"error": ...} + Retry-After when every jail is busy and the queue is full
    GET  /health   -> 200 {"status": "ok", ...limits (workers among them), "busy", "queued", "cpus"}
                      (503 while no jail can run)

Run as ``python3 -m nemo_eval_sandbox --port 6000`` (as root), or in-process through
:func:`run_service` (``nemo-eval sandbox start`` does that in bwrap mode). In docker mode the container
has no network: ``sandbox start`` connects to its ``--lease`` socket and hands over a listening socket
on the host's 127.0.0.1, which the service serves on; that connection is the *lease*, and the service
stops as soon as it closes, that is when the process that started the container is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from dataclasses import asdict
from typing import Callable, Optional

from nemo_eval_sandbox.cgroups import Cgroups, CgroupsUnavailable
from nemo_eval_sandbox.hostuids import StartupError, UidAllocator
from nemo_eval_sandbox.http11 import HttpServer, Request, Response
from nemo_eval_sandbox.pool import JailPool, PoolBusy
from nemo_eval_sandbox.limits import LANGUAGES, Limits, SettingsError, limits_from_env

MAX_CODE_CHARS = 1_000_000
DEFAULT_TIMEOUT = 10.0
LEASE_WAIT_S = 60.0
PREFIX = "nemo-eval sandbox"


def parse_execute(payload: object, limits: Limits) -> tuple[str, str, float, str]:
    """The (code, language, timeout, std_input) of an /execute body; ValueError names what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    code = payload.get("generated_code")
    if not isinstance(code, str):
        raise ValueError("'generated_code' (a string) is required")
    if len(code) > MAX_CODE_CHARS:
        raise ValueError(f"'generated_code' is longer than {MAX_CODE_CHARS} characters")
    language = payload.get("language", "python")
    if not isinstance(language, str) or language not in LANGUAGES:
        raise ValueError(f"'language' must be one of {', '.join(sorted(LANGUAGES))}")
    timeout = payload.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= limits.max_timeout:
        raise ValueError(f"'timeout' must be a number of seconds in (0, {limits.max_timeout:g}]")
    std_input = payload.get("std_input", "")
    if not isinstance(std_input, str):
        raise ValueError("'std_input' must be a string")
    for name, text in (("generated_code", code), ("std_input", std_input)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"'{name}' is not Unicode text: a lone surrogate at index {exc.start}") from None
    return code, language, float(timeout), std_input


class Service:
    """The routes, over a :class:`JailPool`."""

    def __init__(self, limits: Limits, pool: JailPool, cgroups_note: str) -> None:
        self.limits, self.pool, self.cgroups_note = limits, pool, cgroups_note

    async def handle(self, request: Request) -> Response:
        routes = {"/health": ("GET", self.health), "/execute": ("POST", self.execute)}
        if request.path not in routes:
            return Response(404, {"error": f"no such endpoint {request.path[:100]!r}; use POST /execute or GET /health"})
        method, handler = routes[request.path]
        if request.method != method:
            return Response(405, {"error": f"{request.path} takes {method}"}, {"Allow": method})
        return await handler(request)

    async def health(self, request: Request) -> Response:
        ok = self.pool.healthy()
        body = {"status": "ok" if ok else "unavailable", "languages": sorted(LANGUAGES), **asdict(self.limits),
                "busy": self.pool.busy, "queued": self.pool.queued, "cgroups": self.cgroups_note or "per jail",
                "cpus": len(os.sched_getaffinity(0)),   # clients size their batches by workers and cpus
                "jail_uids": sorted(jail.lease.uid for jail in self.pool.jails)}  # whose processes are ours
        if not ok:
            body["error"] = f"no jail can run programs: {self.pool.last_failure or 'shutting down'}"
        return Response(200 if ok else 503, body)

    async def execute(self, request: Request) -> Response:
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            return Response(400, {"error": f"the body must be a JSON object ({reason})"})
        try:
            code, language, timeout, std_input = parse_execute(payload, self.limits)
        except ValueError as exc:
            return Response(400, {"error": str(exc)})
        try:
            jail = await self.pool.acquire()
        except PoolBusy:
            return Response(503, {"error": f"busy: all {self.limits.workers} jails are running and "
                                           f"{self.pool.queued} executions are queued; retry later"},
                            {"Retry-After": "1"})
        try:
            return Response(200, await jail.run(code, language, timeout, std_input))
        finally:
            self.pool.release(jail)


def listen_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a :class:`StartupError` that says what to change."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}; use an address of this machine "
                           "(--host)") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        hint = "another process listens there; choose another --port" if exc.errno == 98 else "choose another --host/--port"
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
    return sock


def _bound_unix(path: str, backlog: int) -> socket.socket:
    """A unix stream socket listening on ``path`` (replacing what was there), open to every local user."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.path.exists(path):
            os.unlink(path)
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def listen_unix(path: str) -> socket.socket:
    try:
        return _bound_unix(path, 1024)
    except OSError as exc:
        raise StartupError(f"cannot listen on {path}: {exc.strerror}") from None


def take_lease(path: str) -> tuple[socket.socket, socket.socket]:
    """Wait for the lease holder (``sandbox start`` on the host) to connect to ``path`` and hand over the
    socket to serve on; returns (the held connection, the listening socket).

    Docker mode: the container has no network, so the host binds ``127.0.0.1:<port>`` itself and passes
    the listening socket over; and the connection it keeps open is the lease (see :func:`run_service`).
    """
    try:
        server = _bound_unix(path, 1)
    except OSError as exc:
        raise StartupError(f"no lease holder handed over a socket on {path} ({exc})") from None
    try:
        server.settimeout(LEASE_WAIT_S)
        lease, _ = server.accept()
        lease.settimeout(LEASE_WAIT_S)
        _, fds, _, _ = socket.recv_fds(lease, 64, 1)
    except (OSError, socket.timeout) as exc:
        raise StartupError(f"no lease holder handed over a socket on {path} ({exc})") from None
    finally:
        server.close()
    if len(fds) != 1:
        raise StartupError(f"the lease holder on {path} sent no socket to serve on")
    lease.setblocking(False)
    return lease, socket.socket(fileno=fds[0])


def _watch_lease(lease: socket.socket, stop: Callable[[object], None]) -> None:
    """Stop the service when the lease connection closes: the holder's process ended, however it died."""
    loop = asyncio.get_running_loop()

    def on_readable() -> None:
        try:
            data = lease.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(lease.fileno())
            stop("the process that started this sandbox is gone")

    loop.add_reader(lease.fileno(), on_readable)


async def run_service(limits: Limits, sockets: list[socket.socket], on_ready: Callable[[str], None],
                      lease: Optional[socket.socket] = None, log: Callable[[str], None] = print) -> Optional[int]:
    """Start the jails, serve until SIGTERM/SIGINT (or the lease ends), stop everything.

    Returns:
        The signal number that stopped the service, or None when its lease ended.

    Raises:
        StartupError: one line saying what is wrong and what to do.
    """
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def stop(reason: object) -> None:
        if not done.done():
            done.set_result(reason)

    uids = UidAllocator(limits)
    delegated = bool(limits.cgroup_root)
    try:
        cgroups: Optional[Cgroups] = Cgroups.for_service(limits.cgroup_root, limits.workers)
        note = ""
    except CgroupsUnavailable as exc:
        cgroups, note = None, f"unavailable ({exc})"
        log(f"{PREFIX}: warning: {exc}: memory is capped by an address-space limit per process instead of a "
            "cgroup per execution (no memory_limit status; 64 threads still fit), and fork bombs by a process "
            "limit per uid")
    pool = JailPool(limits, uids, cgroups)
    server = HttpServer(Service(limits, pool, note).handle, log=lambda message: log(f"{PREFIX}: {message}"))
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop, number)
    try:
        if lease is not None:
            _watch_lease(lease, stop)
        await pool.start()
        if not done.done():
            for sock in sockets:
                await server.serve(sock)
            kinds = "+".join(cgroups.instance_dirs) if cgroups is not None else ""
            on_ready(f"{limits.workers} warm jails" + (f"; cgroups {note}" if note else f", a {kinds} cgroup each"))
        reason = await done
    finally:
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)
        if lease is not None:
            loop.remove_reader(lease.fileno())
        await server.close()
        await pool.close()
        if cgroups is not None:
            await loop.run_in_executor(None, cgroups.remove, not delegated)
    if isinstance(reason, str):
        log(f"{PREFIX}: stopping: {reason}")
        return None
    return reason


def main(argv: Optional[list[str]] = None) -> int:
    """``python3 -m nemo_eval_sandbox``: the service in the foreground (limits from ``SANDBOX_*``)."""
    parser = argparse.ArgumentParser(prog="python3 -m nemo_eval_sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6000)
    parser.add_argument("--unix", default=None, help="listen on this unix socket instead of --host/--port")
    parser.add_argument("--lease", default=None,
                        help="serve on the socket the holder of a connection to this unix socket hands over, and stop "
                             "when that connection closes (docker mode)")
    parser.add_argument("--cleanup-dir", default=None, help="remove this directory on exit (docker mode's socket dir)")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        limits = limits_from_env()
        lease = None
        if args.lease:
            lease, listener = take_lease(args.lease)
            sockets, where = [listener], "the socket handed over by the lease holder"
        else:
            sockets = [listen_unix(args.unix) if args.unix else listen_tcp(args.host, args.port)]
            where = args.unix or f"http://{args.host}:{args.port}"
        stopped_by = asyncio.run(run_service(limits, sockets, lambda note: say(f"{PREFIX}: service ready on {where} ({note})"),
                                             lease, say))
    except (StartupError, SettingsError) as exc:
        say(f"{PREFIX}: error: {exc}")
        return 2
    finally:
        if args.cleanup_dir:
            shutil.rmtree(args.cleanup_dir, ignore_errors=True)
    return 128 + stopped_by if stopped_by else 0


if __name__ == "__main__":
    raise SystemExit(main())
