"""Starting real sandbox services for the tests, and looking at what they leave on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
import requests

from helpers import free_port

POOL_BASE = int(os.environ.get("SANDBOX_UID_BASE", "61000"))
POOL_UIDS = range(POOL_BASE, POOL_BASE + int(os.environ.get("SANDBOX_UID_COUNT", "256")))
AGENT_MARK = b"The agent of one warm jail"


_BUILT: list[bool] = []  # this session already (re)built the docker-mode image


def require(mode: str) -> None:
    """Skip (fail under CI) when ``mode`` cannot run here; in docker mode, (re)build this code's image once."""
    missing = []
    if mode == "bwrap":
        if os.geteuid() != 0:
            missing.append("root")
        if shutil.which("bwrap") is None:
            missing.append("bubblewrap (apt-get install bubblewrap)")
    else:
        probe = subprocess.run(["docker", "info"], capture_output=True) if shutil.which("docker") else None
        if probe is None or probe.returncode != 0:
            missing.append("a running Docker engine (apt-get install docker.io; dockerd)")
        elif not _BUILT:  # (re)build: seconds with Docker's layer cache, and never a stale image under test
            build = subprocess.run([sys.executable, "-m", "nemo_eval", "sandbox", "build", "--make-base"],
                                   capture_output=True, text=True, timeout=900)
            if build.returncode != 0:
                missing.append(f"the sandbox image (build failed: {build.stderr.strip()[-300:]})")
            else:
                _BUILT.append(True)
    if missing:
        message = f"sandbox {mode} mode tests need {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs all of it: a skip there would hide a broken sandbox
        pytest.skip(message)


def start_sandbox(mode: str, *extra: str, env: dict | None = None, port: int | None = None):
    """``nemo-eval sandbox start`` in ``mode`` on a free port; returns (process, url) once it is healthy.

    Its stderr goes to a temporary file (``proc.stderr_path``): a pipe nobody reads could fill up and
    block the service.
    """
    port = port or free_port()
    log = tempfile.NamedTemporaryFile(prefix="nemo-eval-sandbox-test-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "sandbox", "start", "--mode", mode, "--port",
                             str(port), "--workers", "4", "--max-output-chars", "1000", *extra],
                            stdout=subprocess.DEVNULL, stderr=log, env=env)
    log.close()
    proc.stderr_path = log.name
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(url + "/health", timeout=2).json()["status"] == "ok":
                return proc, url
        except (requests.RequestException, ValueError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"sandbox ({mode}) did not start: {stderr_of(proc)}") from None
            time.sleep(0.2)


def stderr_of(proc) -> str:
    with open(proc.stderr_path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def stop_sandbox(proc) -> int:
    """SIGTERM, then the exit code; the stderr file is removed."""
    proc.terminate()
    try:
        return proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the sandbox did not stop on SIGTERM; its log:\n{stderr_of(proc)[-3000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        os.unlink(proc.stderr_path)


@contextmanager
def sandbox_service(mode: str, *extra: str, env: dict | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """A service of our own for one test (the session fixtures serve the others)."""
    require(mode)
    proc, url = start_sandbox(mode, *extra, env=env)
    try:
        yield proc, url
    finally:
        stop_sandbox(proc)


def _status_field(pid: str, name: str) -> str:
    with open(f"/proc/{pid}/status") as handle:
        return handle.read().split(f"{name}:", 1)[1].split("\n", 1)[0]


def jail_uids(sandbox_url: str) -> set[int]:
    """The uids of a running service's jails (from its /health)."""
    return set(requests.get(sandbox_url + "/health", timeout=10).json()["jail_uids"])


def program_processes(uids) -> list[str]:
    """Live processes of ``uids`` (a service's :func:`jail_uids`) that are not a jail itself (bubblewrap or
    its agent): programs. Only that service's: other services on the host (other test runs) may be
    running programs meanwhile, under other uids of the same range.
    """
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = int(_status_field(pid, "Uid").split()[0])
            state = _status_field(pid, "State").split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except (OSError, IndexError):
            continue
        if uid in uids and state != "Z" and not cmdline.startswith(b"bwrap\0") and AGENT_MARK not in cmdline:
            found.append(pid)
    return found


def own_cgroup(controller: str) -> str:
    """This process's cgroup directory for a v1 ``controller`` (services we start are created under it)."""
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"))
    raise LookupError(controller)


def process_start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return int(handle.read().rsplit(b")", 1)[1].split()[19])
