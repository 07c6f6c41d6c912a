"""Host-wide uid allocation for jails, and the last-resort kill of a uid's processes.

Every sandbox service on a host, in either mode, takes its jails' uids from one lock directory
(``<state_dir>/uid-locks``; docker mode bind-mounts the host's into the container): a uid is held
by exactly one jail at a time, for that jail's life, with an exclusive ``flock`` that the kernel
releases when the holder dies. A uid that still has processes is skipped, never cleared. Because a
held uid belongs to its holder alone, killing every process of that uid (a jail's last sweep) can
only hit the holder's own processes — never another service's execution.
"""

from __future__ import annotations

import fcntl
import os
import random
import stat
import subprocess
import time
from typing import Optional

from nemo_eval_sandbox.limits import Limits


class StartupError(RuntimeError):
    """The service cannot start; the message is one line saying what is wrong and what to do."""


def secure_dir(path: str, mode: int) -> None:
    """Create ``path`` (ours, ``mode``) or accept it only if we own it and nobody else can write to it.

    The service runs as root: a directory planted by another user (or a symlink) would let that user
    aim root's file operations at other files.
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StartupError(f"cannot create the sandbox state directory {path}: {exc.strerror} "
                           "(run as root, or set SANDBOX_STATE_DIR)") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise StartupError(f"refusing the sandbox state directory {path}: it must be a real directory owned by root "
                           "and writable by nobody else (remove it, or set SANDBOX_STATE_DIR)")
    if stat.S_IMODE(info.st_mode) != mode:
        try:
            os.chmod(path, mode)
        except OSError:  # e.g. a container's read-only mount point: it is already safe (checked above)
            pass


class UidLease:
    """One uid held exclusively (host-wide) until :meth:`release`."""

    def __init__(self, uid: int, handle_fd: int) -> None:
        self.uid = uid
        self._fd: Optional[int] = handle_fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


class UidAllocator:
    """Hands out uids of ``[uid_base, uid_base + uid_count)`` that no other jail on the host holds."""

    def __init__(self, limits: Limits) -> None:
        self.base, self.count = limits.uid_base, limits.uid_count
        secure_dir(limits.state_dir, 0o711)
        self.lock_dir = limits.uid_lock_dir
        secure_dir(self.lock_dir, 0o700)

    def take(self) -> UidLease:
        """A free uid, or :class:`StartupError` when every uid of the range is held."""
        start = random.randrange(self.count)
        for offset in range(self.count):
            uid = self.base + (start + offset) % self.count
            path = os.path.join(self.lock_dir, f"{uid}.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if processes_of(uid):  # not ours to touch (e.g. a service with another state dir): skip it
                os.close(fd)
                continue
            return UidLease(uid, fd)
        raise StartupError(f"every sandbox uid {self.base}-{self.base + self.count - 1} is held by other sandbox "
                           "jails on this host: stop some services, lower --workers, or widen the range "
                           "(SANDBOX_UID_BASE, SANDBOX_UID_COUNT)")


def processes_of(uid: int) -> list[int]:
    """Live (non-zombie) pids running as ``uid``, as this process's pid namespace sees them."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            found.append(int(name))
    return found


def kill_uid(uid: int, patience: float = 10.0) -> bool:
    """SIGKILL every process of a uid *we hold*, until none is left; False if some outlived ``patience``.

    ``kill -KILL -1`` run as ``uid`` reaches exactly that uid's processes (in this pid namespace), and
    wins against a fork bomb by repetition.
    """
    deadline = time.monotonic() + patience
    while processes_of(uid):
        if time.monotonic() > deadline:
            return False
        subprocess.run(["/bin/sh", "-c", "kill -KILL -1"], user=uid, group=uid, extra_groups=[],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        time.sleep(0.005)
    return True
