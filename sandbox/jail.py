"""Run one piece of untrusted code in a bubblewrap jail, with hard limits. Standard library only.

Every execution gets:

- its own unprivileged uid from a pool (one uid per concurrent execution, so RLIMIT_NPROC, which
  the kernel counts per uid and does not enforce for root, stops fork bombs);
- bubblewrap namespaces: no network (its own empty net namespace), its own pid namespace with the
  program as pid 1 (when it exits, everything it started dies), user/ipc/uts/cgroup namespaces,
  a new session;
- a read-only view of ``/usr`` only (no ``/home``, ``/root``, ``/etc``), ``/proc``, a minimal
  ``/dev``, and a private writable ``/tmp`` that is deleted afterwards;
- rlimits on address space, CPU time, processes, file size and open files;
- a wall-clock timeout after which every process of its uid is killed;
- stdout/stderr capped (the rest is drained and dropped, and the result says it was cut).

This file runs inside the sandbox service (``server.py``), on the host (bwrap mode) or inside
the container (docker mode). It must run as root to switch to the pool uids.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional

LANGUAGES = {"python": ("main.py", ["{python}", "-u", "/tmp/main.py"]), "bash": ("main.sh", ["/bin/bash", "/tmp/main.sh"])}


@dataclass(frozen=True)
class Limits:
    """Per-execution limits (all configurable through the service's environment)."""

    max_timeout: float = 120.0
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 64
    max_open_files: int = 256
    max_output_chars: int = 20000
    python: str = "/usr/bin/python3"
    uid_base: int = 61000
    uid_count: int = 64
    work_root: str = "/tmp/nemo-sandbox"


def _secure_dir(path: str, mode: int) -> None:
    """Create ``path`` (root-owned, ``mode``) or accept it only if root owns it and nobody else can write.

    The service runs as root: a work root planted by another user (or a symlink) would let that
    user point root's file operations at arbitrary files.
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    info = os.lstat(path)
    import stat

    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(f"refusing the sandbox work directory {path}: it must be a real directory owned by "
                           "root and writable by nobody else (remove it, or set SANDBOX_WORK_ROOT)")
    os.chmod(path, mode)


class UidPool:
    """Hands out unprivileged uids, one per concurrent execution, across processes (file locks)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        _secure_dir(limits.work_root, 0o711)  # the jailed uids only traverse it to their own exec dir
        self.lock_dir = os.path.join(limits.work_root, "uid-locks")
        _secure_dir(self.lock_dir, 0o700)

    @contextlib.contextmanager
    def acquire(self) -> Iterator[int]:
        count = self.limits.uid_count
        while True:
            start = random.randrange(count)
            for offset in range(count):
                uid = self.limits.uid_base + (start + offset) % count
                fd = os.open(os.path.join(self.lock_dir, f"{uid}.lock"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                handle = os.fdopen(fd, "w")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                try:
                    kill_uid(uid)  # nothing of a previous execution may survive into this one
                    yield uid  # the caller kills the uid's processes before releasing it (execute)
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    handle.close()
                return
            time.sleep(0.01)


def _signal_uid(uid: int) -> None:
    """SIGKILL every process running as ``uid``: kill(-1) from a child that became that uid."""
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work, then _exit
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


def _live_processes(uid: int) -> list[int]:
    """Pids owned by ``uid`` that are not zombies (zombies are the host init's to reap)."""
    live = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            live.append(int(name))
    return live


def kill_uid(uid: int, patience: float = 10.0) -> None:
    """Kill every process of ``uid`` and wait until none is alive (a fork bomb races single kills)."""
    deadline = time.monotonic() + patience
    while _live_processes(uid):  # usually empty: the pid namespace dies with its pid 1
        _signal_uid(uid)
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)


def _bwrap_command(workdir: str, argv: list[str]) -> list[str]:
    return ["bwrap", "--unshare-all", "--die-with-parent", "--as-pid-1", "--new-session",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--proc", "/proc", "--dev", "/dev", "--bind", workdir, "/tmp", "--chdir", "/tmp",
            "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/tmp",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--", *argv]


def _drop_privileges(uid: int, limits: Limits, timeout: float):
    def apply() -> None:
        cpu = int(timeout) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb << 20, limits.memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb << 20, limits.max_file_mb << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return apply


class _CappedReader:
    """Keeps the first and the last ``cap/2`` characters' worth of bytes; drains and counts the rest.

    The tail matters: tracebacks end stderr, and graders look for a marker at the end of stdout.
    """

    def __init__(self, cap_chars: int) -> None:
        self.cap_chars = cap_chars
        self.half_bytes = max(1, cap_chars // 2) * 4  # enough bytes for cap/2 characters of any UTF-8
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half_bytes - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.half_bytes:
                del self.tail[: len(self.tail) - self.half_bytes]

    def text(self) -> tuple[str, bool]:
        cap = self.cap_chars
        if self.total == len(self.head) + len(self.tail):  # nothing was dropped: cut the decoded text
            whole = (self.head + self.tail).decode("utf-8", errors="replace")
            if len(whole) <= cap:
                return whole, False
            return whole[: cap // 2] + whole[len(whole) - (cap - cap // 2):], True
        head = self.head.decode("utf-8", errors="replace")[: cap // 2]
        tail = self.tail.decode("utf-8", errors="replace")
        return head + tail[len(tail) - (cap - len(head)):], True


def execute(code: str, language: str, timeout: float, std_input: str, limits: Limits, pool: UidPool) -> dict:
    """Run ``code`` in a fresh jail and report how it ended.

    Returns:
        ``{"process_status": "completed"|"timeout"|"error", "stdout", "stderr", "return_code",
        "stdout_truncated", "stderr_truncated", "wall_time"}``. ``completed`` means the program
        ran to its end (any exit code); ``error`` means the sandbox could not run it.
    """
    file_name, argv_template = LANGUAGES[language]
    argv = [part.format(python=limits.python) for part in argv_template]
    started = time.monotonic()
    with pool.acquire() as uid:
        workdir = tempfile.mkdtemp(prefix="exec-", dir=limits.work_root)
        try:
            os.chown(workdir, uid, uid)
            os.chmod(workdir, 0o700)
            path = os.path.join(workdir, file_name)
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write(code)
            os.chown(path, uid, uid)
            return _run(_bwrap_command(workdir, argv), uid, limits, timeout, std_input, started)
        finally:
            kill_uid(uid)
            shutil.rmtree(workdir, ignore_errors=True)


def _run(command: list[str], uid: int, limits: Limits, timeout: float, std_input: str, started: float) -> dict:
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_drop_privileges(uid, limits, timeout), close_fds=True)
    except OSError as exc:
        return _result("error", "", f"sandbox could not start the jail: {exc}", None, False, False, started)
    feeder = threading.Thread(target=_feed, args=(proc, std_input.encode("utf-8")), daemon=True)
    feeder.start()
    out, err = _CappedReader(limits.max_output_chars), _CappedReader(limits.max_output_chars)
    timed_out = _drain(proc, out, err, time.monotonic() + timeout)
    if timed_out:
        kill_uid(uid)
        proc.kill()
    return_code = proc.wait()
    feeder.join(timeout=1)
    proc.stdout.close()
    proc.stderr.close()
    stdout, out_cut = out.text()
    stderr, err_cut = err.text()
    if timed_out:
        return _result("timeout", stdout, stderr, None, out_cut, err_cut, started)
    if return_code != 0 and stderr.startswith("bwrap:"):
        return _result("error", stdout, stderr, return_code, out_cut, err_cut, started)
    return _result("completed", stdout, stderr, return_code, out_cut, err_cut, started)


def _feed(proc: subprocess.Popen, data: bytes) -> None:
    try:
        if data:
            proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _drain(proc: subprocess.Popen, out: _CappedReader, err: _CappedReader, deadline: float) -> bool:
    """Read both pipes until EOF; True if the deadline passed first."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, out)
    selector.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            for key, _ in selector.select(timeout=min(remaining, 0.5)):
                data = os.read(key.fd, 65536)
                if data:
                    key.data.feed(data)
                else:
                    selector.unregister(key.fileobj)
        return False
    finally:
        selector.close()


def _result(status: str, stdout: str, stderr: str, return_code: Optional[int], out_cut: bool, err_cut: bool,
            started: float) -> dict:
    return {"process_status": status, "stdout": stdout, "stderr": stderr, "return_code": return_code,
            "stdout_truncated": out_cut, "stderr_truncated": err_cut,
            "wall_time": round(time.monotonic() - started, 4)}
