"""The run watchdog: when the process that started it dies (however: exit, Ctrl-C, ``kill -9``), it ends
everything that process started.

Run as a file with the standard library only (``python -S nemo_eval/watchdog.py RUN_ID GRACE``), started
by :class:`nemo_eval.children.RunWatchdog`. It reads registrations from its stdin, a pipe whose only
writer is the launcher, one per line:

- ``group <pgid>``: a process group the launcher started (a step, the sandbox, a server);
- ``container <id or name>``: a Docker container the launcher started (or that a child of it starts
  under a name the launcher chose).

When the pipe closes (the launcher exited or died: the kernel closes its end) or on SIGTERM / SIGINT /
SIGHUP (Slurm ending the step), it sends SIGTERM to every live process of those groups and to every
process whose environment carries ``NEMO_EVAL_RUN_ID=<RUN_ID>`` or a nested ``<RUN_ID>/...`` (their
descendants, even those that left the group), removes the containers (and any labelled ``nemo-eval.run=<RUN_ID>``), waits up to
GRACE seconds, then SIGKILLs what is left, and exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop()


def _carries(environ: bytes, marker: bytes) -> bool:
    """``NEMO_EVAL_RUN_ID=<id>`` exactly, or a nested run of it (``<id>/...``, a step's own children)."""
    return marker + b"\0" in environ or marker + b"/" in environ or environ.endswith(marker)


def _live_targets(groups: set[int], marker: bytes) -> list[int]:
    """Pids (not zombies, not us) in ``groups`` or whose environment carries the run id ``marker``."""
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
            fields = stat[stat.rfind(b")") + 2:].split()
            if fields[0] in (b"Z", b"X"):
                continue
            if int(fields[2]) in groups:
                found.append(int(name))
                continue
            with open(f"/proc/{name}/environ", "rb") as handle:
                if _carries(handle.read(), marker):
                    found.append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _signal_all(pids: list[int], groups: set[int], sig: int) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _remove_containers(run_id: str, containers: set[str]) -> None:
    docker = shutil.which("docker")
    if docker is None:
        return
    try:
        labelled = subprocess.run([docker, "ps", "-aq", "--filter", f"label=nemo-eval.run={run_id}"],
                                  capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        labelled = []
    ids = sorted(containers | set(labelled))
    if ids:
        try:
            subprocess.run([docker, "rm", "-f", *ids], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass


def sweep(run_id: str, groups: set[int], containers: set[str], grace: float) -> None:
    """End every process and container of the run: SIGTERM, ``grace`` seconds, SIGKILL; then remove the
    containers (once no process of the run is left that could still be creating one)."""
    marker = f"NEMO_EVAL_RUN_ID={run_id}".encode()
    targets = _live_targets(groups, marker)
    _signal_all(targets, groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while targets and time.monotonic() < deadline:
        time.sleep(0.05)
        targets = _live_targets(groups, marker)
    for _ in range(20):  # SIGKILL, including anything started while the others were stopping
        if not targets:
            break
        _signal_all(targets, groups, signal.SIGKILL)
        time.sleep(0.05)
        targets = _live_targets(groups, marker)
    if containers:
        _remove_containers(run_id, containers)


def main(argv: list[str]) -> int:
    run_id, grace = argv[0], float(argv[1])
    groups: set[int] = set()
    containers: set[str] = set()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    try:
        for line in sys.stdin:
            kind, _, value = line.strip().partition(" ")
            if kind == "group" and value.isdigit():
                groups.add(int(value))
            elif kind == "container" and value:
                containers.add(value)
    except _Stop:
        pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # finish the sweep whatever happens now
    sweep(run_id, groups, containers, grace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
