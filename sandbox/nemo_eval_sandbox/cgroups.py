"""Per-jail cgroups (v1 memory + pids; in docker mode cpu too): the hard caps on what one execution
can hold.

Layout: one *instance* directory per service and controller, and one *slot* cgroup per jail under
it. In bwrap mode the instance directory is ``nemo-eval-sandbox-<pid>-<start time>`` under the
service's own cgroup (so limits already placed on the service, e.g. a session's memory cgroup, keep
applying); in docker mode the host creates it the same way under ``sandbox start``'s cgroup and
bind-mounts it into the container (``Limits.cgroup_root``).

A slot's memory limit counts the execution's RAM *and* its files (tmpfs pages are charged to the
cgroup that wrote them); going over it makes the kernel's OOM killer end the program, which the
slot's ``oom_kill`` counter tells. ``pids.max`` stops fork bombs. Instance directories of services
that died are reclaimed when a service starts under the same parent.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from typing import Optional

CONTROLLERS = ("memory", "pids")  # required
OPTIONAL_CONTROLLERS = ("cpu",)  # docker mode, where available: jails get the CPU weight of processes of their own
INSTANCE_PREFIX = "nemo-eval-sandbox-"
_INSTANCE = re.compile(rf"^{INSTANCE_PREFIX}(\d+)-(\d+)$")


class CgroupsUnavailable(RuntimeError):
    """No writable cgroup v1 memory and pids hierarchy: the message says what falls back to what."""


def _v1_mounts() -> dict[str, str]:
    """Mount point of each cgroup v1 controller, from /proc/self/mountinfo."""
    mounts: dict[str, str] = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            before, _, after = line.partition(" - ")
            parts, tail = before.split(), after.split()
            if len(tail) < 3 or tail[0] != "cgroup":
                continue
            for option in tail[2].split(","):
                if option in CONTROLLERS + OPTIONAL_CONTROLLERS and parts[3] == "/":
                    mounts.setdefault(option, parts[4])
    return mounts


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(","):
                paths[name] = path
    return paths


def process_start_time(pid: int) -> Optional[int]:
    """The start time of ``pid`` (clock ticks since boot), or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def instance_name(pid: int) -> str:
    """The instance directory name of process ``pid``: pid and start time, so a reused pid is not mistaken."""
    return f"{INSTANCE_PREFIX}{pid}-{process_start_time(pid)}"


def owner_alive(name: str) -> bool:
    """Whether the process that created instance directory ``name`` still runs (unknown names count as alive)."""
    match = _INSTANCE.match(name)
    if not match:
        return True
    return process_start_time(int(match.group(1))) == int(match.group(2))


def host_instance_dirs(pid: int, jails: int, cpu: bool = False) -> dict[str, str]:
    """Create (and return) the instance directory per controller under this process's own cgroups.

    With ``cpu`` (docker mode, whose container sits in the engine's cgroup, which all containers share
    with the weight of one process) also a cpu one, weighted like ``jails`` processes of their own.
    In bwrap mode the programs stay in the service's cpu cgroup: each is a process like any other.

    Raises:
        CgroupsUnavailable: no writable v1 memory and pids hierarchies here.
    """
    mounts, own = _v1_mounts(), _own_paths()
    missing = [name for name in CONTROLLERS if name not in mounts or name not in own]
    if missing:
        raise CgroupsUnavailable(f"no cgroup v1 {' and '.join(missing)} controller mounted")
    dirs = {}
    for name in CONTROLLERS + (OPTIONAL_CONTROLLERS if cpu else ()):
        if name not in mounts or name not in own:
            continue
        parent = os.path.join(mounts[name], own[name].lstrip("/"))
        reclaim_dead_instances(parent)
        path = os.path.join(parent, instance_name(pid))
        try:
            os.makedirs(path, exist_ok=True)
            if name == "cpu":
                _write(path, "cpu.shares", min(262144, 1024 * jails))
        except OSError as exc:
            if name in OPTIONAL_CONTROLLERS:
                continue
            raise CgroupsUnavailable(f"cannot create a cgroup under {parent}: {exc.strerror}") from None
        dirs[name] = path
    return dirs


def _tasks(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        return []


def remove_tree(path: str, patience: float = 10.0) -> bool:
    """Kill every task of cgroup ``path`` and its children, then remove them all (deepest first)."""
    deadline = time.monotonic() + patience
    for root, dirs, _ in os.walk(path, topdown=False):
        for name in dirs:
            if not remove_tree(os.path.join(root, name), max(0.1, deadline - time.monotonic())):
                return False
    while True:
        for pid in _tasks(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:  # EBUSY: tasks still exiting
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def reclaim_dead_instances(parent: str) -> None:
    """Remove the instance directories under ``parent`` whose creator is gone (a crashed service)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if name.startswith(INSTANCE_PREFIX) and not owner_alive(name):
            remove_tree(os.path.join(parent, name))


@dataclass
class SlotCgroup:
    """The cgroups of one jail: memory (RAM + files) and pids."""

    paths: dict[str, str]
    _oom_control: int = -1

    def add(self, pid: int) -> None:
        for path in self.paths.values():
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write(str(pid))

    def oom_kills(self) -> int:
        """How many processes the OOM killer ended in this cgroup so far (one read of a file kept open)."""
        try:
            if self._oom_control < 0:
                self._oom_control = os.open(os.path.join(self.paths["memory"], "memory.oom_control"),
                                            os.O_RDONLY | os.O_CLOEXEC)
            for line in os.pread(self._oom_control, 4096, 0).decode().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def tasks(self) -> list[int]:
        return _tasks(self.paths["pids"])

    def remove(self) -> bool:
        if self._oom_control >= 0:
            os.close(self._oom_control)
            self._oom_control = -1
        return all([remove_tree(path) for path in self.paths.values()])


class Cgroups:
    """Slot cgroups under this service's instance directories."""

    def __init__(self, instance_dirs: dict[str, str]) -> None:
        self.instance_dirs = instance_dirs
        self._serial = 0

    @classmethod
    def for_service(cls, delegated_root: Optional[str], jails: int) -> "Cgroups":
        """Docker mode: the host's delegated directories; bwrap mode: new ones under our own cgroups.

        Raises:
            CgroupsUnavailable: with the reason.
        """
        if delegated_root:
            dirs = {name: os.path.join(delegated_root, name) for name in CONTROLLERS + OPTIONAL_CONTROLLERS
                    if name in CONTROLLERS or os.path.isdir(os.path.join(delegated_root, name))}
            for path in dirs.values():
                if not os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
                    raise CgroupsUnavailable(f"the delegated cgroup {path} is not writable")
            for path in dirs.values():  # slots of a previous container of this instance
                for name in os.listdir(path):
                    if name.startswith("slot-"):
                        remove_tree(os.path.join(path, name))
            return cls(dirs)
        return cls(host_instance_dirs(os.getpid(), jails))

    def new_slot(self, memory_bytes: int, max_tasks: int) -> SlotCgroup:
        self._serial += 1
        paths = {name: os.path.join(root, f"slot-{self._serial}") for name, root in self.instance_dirs.items()}
        for path in paths.values():
            os.mkdir(path)
        _write(paths["memory"], "memory.limit_in_bytes", memory_bytes)
        _write(paths["memory"], "memory.swappiness", 0)
        _write(paths["pids"], "pids.max", max_tasks)
        return SlotCgroup(paths)

    def remove(self, own: bool) -> None:
        """Remove the slots (and, when the instance directories are ours, those too)."""
        for root in self.instance_dirs.values():
            if own:
                remove_tree(root)
            else:
                for name in os.listdir(root):
                    if name.startswith("slot-"):
                        remove_tree(os.path.join(root, name))


def _write(path: str, name: str, value: int) -> None:
    try:
        with open(os.path.join(path, name), "w") as handle:
            handle.write(str(value))
    except OSError:
        if name != "memory.swappiness":  # refused in some nested hierarchies; harmless without swap
            raise
