"""One run owns an output directory at a time: the lock file ``<output_dir>/.nemo-eval.lock``.

The owner holds an exclusive ``flock`` on the file for as long as it runs and writes who it is into it
(host, pid, the pid's start time, the boot id, since when, the run id; for Slurm the job ids). A second
launcher on the same directory cannot take the flock and refuses in one line naming the owner. The
kernel drops the flock when its holder dies, however it dies, so a lock left by a killed launcher is
simply taken over; what that run left behind (processes carrying its run id, its containers) is
ended first.

Where the file system has no ``flock`` (some network file systems), the recorded owner decides: on
this host it is alive when its pid exists with the recorded start time and boot id; an owner on
another host is taken to be alive. A submission to Slurm records its job ids and releases the flock;
the directory stays owned while any of those jobs is pending or running.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from nemo_eval.errors import UserError
from nemo_eval.jsonl import make_dir

LOCK_NAME = ".nemo-eval.lock"
NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> Optional[int]:
    """The pid's start time in clock ticks since boot (tells a reused pid from the original), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rfind(b")") + 2:].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def describe_owner(owner: dict[str, Any]) -> str:
    since = owner.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    return f"host {owner.get('host', '?')}, pid {owner.get('pid', '?')}, since {when}"


def local_owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the recorded owner still runs (an owner on another host counts as alive)."""
    if owner.get("host") != socket.gethostname():
        return True
    if owner.get("boot_id") and owner.get("boot_id") != _boot_id():
        return False
    pid = owner.get("pid")
    return isinstance(pid, int) and _start_ticks(pid) is not None and _start_ticks(pid) == owner.get("pid_start")


class OutputDirLock:
    """The ownership of one output directory.

    Args:
        output_dir: The directory (created when missing).
        run_id: This run's id (recorded, and used to recognise what a dead owner left behind).
        command: What owns it, for the refusal message (e.g. ``nemo-eval eval``).
        slurm_active: For a previous owner that was a Slurm submission: which of its job ids are still
            pending or running (None when that cannot be told here).
    """

    def __init__(self, output_dir: Path, run_id: str, command: str = "nemo-eval eval",
                 slurm_active: Optional[Callable[[list[str]], Optional[list[str]]]] = None) -> None:
        self.output_dir = output_dir
        self.path = output_dir / LOCK_NAME
        self.run_id = run_id
        self.command = command
        self.slurm_active = slurm_active
        self.previous: dict[str, Any] = {}
        self._fd: Optional[int] = None
        self._owner: dict[str, Any] = {}

    def acquire(self) -> "OutputDirLock":
        """Take the directory or raise a one-line UserError naming its owner."""
        make_dir(self.output_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise UserError(f"cannot create {self.path}: {exc.strerror}; check the permissions of {self.output_dir}") from None
        flocked = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read(fd)
            os.close(fd)
            raise UserError(f"{self.output_dir} is in use by another {owner.get('command', 'nemo-eval run')} "
                            f"({describe_owner(owner)}); wait for it to finish, stop it, or use another --output-dir") from None
        except OSError as exc:
            if exc.errno not in NO_FLOCK:
                os.close(fd)
                raise
            flocked = False
        self._fd = fd
        self.previous = _read(fd)
        try:
            self._check_previous(flocked)
        except BaseException:
            self.release()
            raise
        self._owner = {"command": self.command, "host": socket.gethostname(), "pid": os.getpid(),
                       "pid_start": _start_ticks(os.getpid()), "boot_id": _boot_id(), "since": time.time(),
                       "run_id": self.run_id, "containers": [], "slurm_jobs": []}
        self._write()
        return self

    def _check_previous(self, flocked: bool) -> None:
        previous = self.previous
        if not previous or previous.get("released"):
            return
        jobs = [str(j) for j in previous.get("slurm_jobs") or []]
        if jobs:
            active = self.slurm_active(jobs) if self.slurm_active else None
            if active is None:
                raise UserError(f"{self.output_dir} belongs to Slurm jobs {' '.join(jobs)} (submitted from "
                                f"{describe_owner(previous)}) "
                                f"and Slurm cannot be asked from here; once they are over, remove {self.path}")
            if active:
                raise UserError(f"{self.output_dir} is in use by Slurm jobs {' '.join(active)} (submitted from "
                                f"{describe_owner(previous)}); "
                                f"wait for them (or scancel {' '.join(active)}), or use another --output-dir")
            return
        if not flocked and local_owner_alive(previous):
            raise UserError(f"{self.output_dir} is in use by another {previous.get('command', 'nemo-eval run')} "
                            f"({describe_owner(previous)}); wait for it to finish, stop it, or use another --output-dir "
                            f"(this file system has no flock: if that run is gone, remove {self.path})")
        print(f"nemo-eval: taking over {self.output_dir} from a run that is gone ({describe_owner(previous)})",
              file=sys.stderr)
        self.reap(previous)

    @staticmethod
    def reap(previous: dict[str, Any]) -> None:
        """End what a dead owner left running (processes carrying its run id, its containers)."""
        run_id = previous.get("run_id")
        if not run_id or previous.get("host") not in (None, socket.gethostname()):
            return
        from nemo_eval.watchdog import sweep

        sweep(str(run_id), set(), {str(c) for c in previous.get("containers") or []}, grace=5.0)

    def record(self, **fields: Any) -> None:
        """Add to what the lock says about the owner (``containers=[...]``, ``slurm_jobs=[...]``)."""
        self._owner.update(fields)
        self._write()

    def add_container(self, container_id: str) -> None:
        self.record(containers=self._owner.get("containers", []) + [container_id])

    def _write(self) -> None:
        if self._fd is None:
            return
        data = (json.dumps(self._owner) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self, keep_slurm_jobs: bool = False) -> None:
        """Give the directory up (a Slurm submission keeps its job ids in the file; they own it now)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._owner and not keep_slurm_jobs:
                data = (json.dumps({**self._owner, "released": True}) + "\n").encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> "OutputDirLock":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 65536, 0)
        value = json.loads(data) if data.strip() else {}
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}
