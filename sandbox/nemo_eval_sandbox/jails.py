"""Warm jails: each is a bubblewrap sandbox started once, whose agent (``agent.py``) runs one
execution at a time in fresh namespaces of its own. This module starts a jail, hands it executions,
collects their output and status, and tears it down when anything about it is in doubt (``pool.py``
then starts a new one).

A jail runs as a uid held for it alone (``hostuids``) and, where cgroups are available, in its own
memory + pids cgroup (``cgroups``); otherwise rlimits stand in (address space for memory, process
count per uid for fork bombs).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from nemo_eval_sandbox.cgroups import SlotCgroup
from nemo_eval_sandbox.hostuids import StartupError, UidLease, kill_uid
from nemo_eval_sandbox.limits import LANGUAGES, PROGRAM_ENV, Limits
from nemo_eval_sandbox.output import CappedReader

AGENT_SOURCE = (Path(__file__).parent / "agent.py").read_text(encoding="utf-8")
REPORT_GRACE_S = 5.0  # beyond the timeout, how long the agent may take to report
AGENT_OVERHEAD_MB = 64  # the jail's pid 1 and its agent live in the jail's cgroup too
SPAWN_TIMEOUT_S = 60.0
INLINE_MAX = 48 << 10  # programs and stdin up to this size travel in the request message itself


def bwrap_command(limits: Limits, control_fd: int) -> list[str]:
    """The jail: own namespaces, read-only ``/usr``, read-only root and ``/dev``, the agent as pid 1."""
    return ["bwrap", "--unshare-all", "--die-with-parent", "--as-pid-1", "--new-session",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--proc", "/proc", "--dev", "/dev", "--dir", "/tmp", "--dir", "/run",
            "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/",
            "--clearenv", "--setenv", "LANG", "C.UTF-8",
            "--", limits.python, "-I", "-S", "-c", AGENT_SOURCE, str(control_fd)]


class JailBroken(Exception):
    """The jail can no longer be trusted to run executions (it is torn down and replaced)."""


class Jail:
    """One warm jail: a bubblewrap process, its agent, its uid and (optionally) its cgroup."""

    def __init__(self, limits: Limits, lease: UidLease, cgroup: Optional[SlotCgroup]) -> None:
        self.limits, self.lease, self.cgroup = limits, lease, cgroup
        self.proc: Optional[subprocess.Popen] = None
        self.control: Optional[socket.socket] = None
        self._waiter: Optional[asyncio.Future] = None  # the agent's next message
        self._oom_seen = 0
        self._configured = False  # the agent gets the per-jail settings with its first request
        self.broken = False

    @property
    def uid(self) -> int:
        return self.lease.uid

    async def start(self) -> None:
        """Start bubblewrap and wait for the agent's hello; then move both into the jail's cgroup."""
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, kill_uid, self.uid):  # what our previous jail on this uid left
            raise StartupError(f"processes of sandbox uid {self.uid} cannot be killed")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(bwrap_command(self.limits, theirs.fileno()), pass_fds=(theirs.fileno(),),
                                         user=self.uid, group=self.uid, extra_groups=[], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
        except OSError as exc:
            ours.close()
            raise StartupError(f"cannot start bubblewrap: {exc.strerror}; apt-get install bubblewrap") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        self.control = ours
        loop.add_reader(ours.fileno(), self._on_control)
        try:
            hello = await self._next_message(SPAWN_TIMEOUT_S)
        except JailBroken:
            hello = None
        if not hello or not hello.get("ready"):
            await self.destroy()
            reason = " ".join(self.proc.stderr.read().decode("utf-8", "replace").strip().splitlines()[-2:])
            raise StartupError(f"cannot start a sandbox jail: {reason or 'no answer from its agent'}")
        os.set_blocking(self.proc.stderr.fileno(), False)
        loop.add_reader(self.proc.stderr.fileno(), self._forward_stderr)
        if self.cgroup is not None:  # bubblewrap, the jail's pid 1 and the agent: all that runs in it so far
            for pid in _tree(self.proc.pid):
                self.cgroup.add(pid)
            self._oom_seen = self.cgroup.oom_kills()

    def _forward_stderr(self) -> None:
        """The agent writes nothing normally; whatever it writes goes to the service's stderr."""
        try:
            data = os.read(self.proc.stderr.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            asyncio.get_running_loop().remove_reader(self.proc.stderr.fileno())
            return
        for line in data.decode("utf-8", "replace").splitlines():
            sys.stderr.write(f"sandbox jail (uid {self.uid}): {line}\n")

    def _on_control(self) -> None:
        try:
            message = self.control.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        waiter, self._waiter = self._waiter, None
        if not message:
            asyncio.get_running_loop().remove_reader(self.control.fileno())
            self.broken = True
        if waiter is None or waiter.done():
            self.broken = True  # a message nobody asked for: the jail is out of step
            return
        try:
            waiter.set_result(json.loads(message.decode()) if message else None)
        except ValueError:
            self.broken = True
            waiter.set_result(None)

    async def _next_message(self, patience: float) -> Optional[dict]:
        """The agent's next message (None if it died); :class:`JailBroken` after ``patience`` seconds."""
        if self.broken and self.control is None:
            raise JailBroken("the jail is gone")
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(patience, lambda: waiter.done() or waiter.set_exception(
            JailBroken("the jail did not report in time")))
        try:
            return await waiter
        finally:
            timer.cancel()

    async def run(self, code: str, language: str, timeout: float, std_input: str) -> dict:
        """Run one program in this (idle) jail and report how it ended.

        Returns:
            ``{"process_status", "stdout", "stderr", "return_code", "stdout_truncated", "stderr_truncated",
            "wall_time"}``; ``process_status`` is ``completed`` (ran to its end, any exit code), ``timeout``,
            ``memory_limit``, ``disk_limit`` or ``error`` (the sandbox could not run it). When the jail
            itself failed it is marked broken (the pool replaces it). If the caller is cancelled (its client
            left), the jail is marked broken too: the program may still be running.
        """
        started = time.monotonic()
        oom_before = self._oom_seen
        try:
            return await self._run(code, language, timeout, std_input, started)
        except JailBroken as exc:
            self.broken = True
            oom = self.cgroup is not None and self.cgroup.oom_kills() > oom_before
            elapsed = time.monotonic() - started
            status = "memory_limit" if oom else "timeout" if elapsed >= timeout else "error"
            return {"process_status": status, "stdout": "", "stderr": "" if status != "error" else f"sandbox: {exc}",
                    "return_code": None, "stdout_truncated": False, "stderr_truncated": False,
                    "wall_time": round(elapsed, 4)}
        except BaseException:
            self.broken = True
            raise

    async def _run(self, code: str, language: str, timeout: float, std_input: str, started: float) -> dict:
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        err_read, err_write = os.pipe2(os.O_CLOEXEC)
        out, err = CappedReader(self.limits.max_output_chars), CappedReader(self.limits.max_output_chars)
        loop = asyncio.get_running_loop()
        closed = loop.create_future()
        open_ends = [2]
        message, extra_fds = self._request(code, language, timeout, std_input)
        try:
            for fd, reader in ((out_read, out), (err_read, err)):
                os.set_blocking(fd, False)
                loop.add_reader(fd, _pump, fd, reader, open_ends, closed)
            try:
                socket.send_fds(self.control, [message], [out_write, err_write] + extra_fds)
            except OSError as exc:
                raise JailBroken(f"the jail's agent is gone ({exc.strerror})") from None
            for fd in [out_write, err_write] + extra_fds:
                os.close(fd)
            out_write = err_write = -1
            extra_fds = []
            report = await self._next_message(timeout + REPORT_GRACE_S)
            if report is None:
                raise JailBroken("the jail's agent died")
            if report.get("retire") or "setup_error" in report:
                self.broken = True  # replaced once this result is out (the agent asked for it, or could not start one)
            if not closed.done():
                timer = loop.call_later(REPORT_GRACE_S, lambda: closed.done() or closed.set_exception(
                    JailBroken("the program's output did not close")))
                try:
                    await closed
                finally:
                    timer.cancel()
        finally:
            for fd in (out_read, err_read):
                loop.remove_reader(fd)
                os.close(fd)
            for fd in [out_write, err_write] + extra_fds:
                if fd >= 0:
                    os.close(fd)
        oom = False
        if self.cgroup is not None:
            seen, self._oom_seen = self._oom_seen, self.cgroup.oom_kills()
            oom = self._oom_seen > seen
        return _result(report, oom, out, err, started)

    def _request(self, code: str, language: str, timeout: float, std_input: str) -> tuple[bytes, list[int]]:
        """The request message (header, NUL, program and stdin when small) and the extra fds it carries."""
        program, data = code.encode("utf-8"), std_input.encode("utf-8")
        header: dict = {"language": language, "timeout": timeout,
                        "program_bytes": len(program), "stdin_bytes": len(data)}
        if not self._configured:
            header["settings"] = self._settings()
            self._configured = True
        if len(program) + len(data) <= INLINE_MAX:
            return json.dumps(header).encode() + b"\0" + program + data, []
        header["program_bytes"] = header["stdin_bytes"] = -1  # in the memfds that follow
        return json.dumps(header).encode() + b"\0", [_memfd(program), _memfd(data)]

    def _settings(self) -> dict:
        """What is the same for every execution of this jail."""
        memory = self.limits.memory_mb << 20
        return {"env": PROGRAM_ENV, "disk_bytes": self.limits.disk_mb << 20,
                "inodes": max(1024, (self.limits.disk_mb << 20) // 4096),
                "languages": {name: {"file": file_name, "argv": [part.format(python=self.limits.python)
                                                                  for part in argv]}
                              for name, (file_name, argv) in LANGUAGES.items()},
                # with a memory cgroup, address space is only a guard against absurd single allocations
                "rlimits": {"as": memory * 4 if self.cgroup is not None else memory,
                            "nproc": self.limits.max_processes, "fsize": self.limits.disk_mb << 20,
                            "nofile": self.limits.max_open_files, "core": 0, "stack": 8 << 20}}

    async def destroy(self) -> None:
        """Kill the jail and everything in it; free its cgroup. The uid stays held (for the replacement)."""
        self.broken = True
        loop = asyncio.get_running_loop()
        if self.control is not None:
            try:
                loop.remove_reader(self.control.fileno())
            except (ValueError, OSError):
                pass
            self.control.close()
            self.control = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()  # bwrap's --die-with-parent chain kills the jail's pid 1, and so everything in it
            await loop.run_in_executor(None, self.proc.wait)
            try:
                loop.remove_reader(self.proc.stderr.fileno())
            except (ValueError, OSError):
                pass
        await loop.run_in_executor(None, self._sweep)

    def _sweep(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        kill_uid(self.uid)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found = [pid]
    for child in _children(pid):
        found += _tree(child)
    return found


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("nemo-eval-sandbox", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _pump(fd: int, reader: CappedReader, open_ends: list[int], closed: asyncio.Future) -> None:
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return
    if data:
        reader.feed(data)
        return
    asyncio.get_running_loop().remove_reader(fd)
    open_ends[0] -= 1
    if open_ends[0] == 0 and not closed.done():
        closed.set_result(None)


def _result(report: dict, oom: bool, out: CappedReader, err: CappedReader, started: float) -> dict:
    stdout, out_cut = out.text()
    stderr, err_cut = err.text()
    return_code = report.get("return_code")
    if "setup_error" in report:
        status, stderr, return_code = "error", f"sandbox could not run the program: {report['setup_error']}", None
    elif report.get("timed_out"):
        status, return_code = "timeout", None
    elif oom:
        status = "memory_limit"
    elif report.get("disk_full"):
        status = "disk_limit"
    else:
        status = "completed"
    return {"process_status": status, "stdout": stdout, "stderr": stderr, "return_code": return_code,
            "stdout_truncated": out_cut, "stderr_truncated": err_cut,
            "wall_time": round(time.monotonic() - started, 4)}
